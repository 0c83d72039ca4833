"""Work after the response: the functions' internal extension on the emulated Extensions API.

Each test runs a handler that defers work with the real ``functions.common.after_response`` in an
emulated container on CPython 3.12: the caller gets the answer before the work runs, and the container
is neither frozen nor reused until the work is done, as Lambda treats a registered extension.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from embedrec_local.lambda_runtime.pool import FunctionPool
from functions.common import after_response
from tests.functional.lambda_runtime.test_containers import HOOK_REGISTRY, PYTHON, _pool, _settled_state

pytestmark = pytest.mark.skipif(PYTHON is None, reason="needs CPython 3.12 (Lambda's python3.12)")

# The module needs only a logger of the function's code: the standard library's stands in for it.
OBSERVABILITY = "import logging\nlogger = logging.getLogger('embedrec')\n"

DEFERRING = """
import os, time
from functions.common.after_response import AfterResponse, after_response

STARTED = after_response.start()  # the init phase

def handler(event, context):
    def work():
        time.sleep(event["seconds"])
        with open(event["path"], "a") as written:
            written.write(context.aws_request_id + "\\n")
    after_response.defer(work)
    late = AfterResponse("late").start() if event.get("register_late") else None
    try:
        return {"started": STARTED, "active": after_response.active, "pid": os.getpid(), "late": late,
                "request_id": context.aws_request_id}
    finally:
        if not event.get("forget"):
            after_response.hand_over(context.aws_request_id)

def handed_over_early(event, context):
    # The work is handed over (and done) before the answer: the runtime then writes its "done"
    # right behind the answer, and the two tend to arrive in one read
    after_response.hand_over(context.aws_request_id)
    time.sleep(0.02)
    return {"pid": os.getpid()}
"""

SNAPSTARTED = """
from snapshot_restore_py import register_after_restore
from deferring import handler, after_response
register_after_restore(after_response.ensure_running)
"""


@pytest.fixture
def deferring(code: Path) -> Path:
    package = code / "functions" / "common"
    package.mkdir(parents=True)
    (code / "functions" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "observability.py").write_text(OBSERVABILITY)
    shutil.copy(after_response.__file__, package / "after_response.py")
    (code / "deferring.py").write_text(DEFERRING)
    return code


def _lines(path: Path, count: int) -> list[str]:
    for _ in range(500):
        if path.exists() and len(lines := path.read_text().split()) >= count:
            return lines
        time.sleep(0.01)
    return path.read_text().split() if path.exists() else []


def test_the_answer_comes_before_the_deferred_work_which_ends_before_the_container_is_frozen(
    deferring: Path, pools: list[FunctionPool], tmp_path: Path
) -> None:
    pool = _pool(deferring, "handler", module="deferring", timeout_s=5)
    pools.append(pool)
    written = tmp_path / "written.txt"

    started = time.perf_counter()
    first = pool.invoke({"seconds": 0.6, "path": str(written)})
    answered_s = time.perf_counter() - started

    assert first.payload["started"] is True and first.payload["active"] is True
    assert answered_s < 0.6 and not written.exists()  # the caller has the answer; the work still runs
    # Busy until the work is done: a second request meanwhile gets a container of its own
    second = pool.invoke({"seconds": 0.0, "path": str(written)})
    assert second.payload["pid"] != first.payload["pid"] and pool.stats.cold_starts == 2
    assert sorted(_lines(written, 2)) == sorted([first.payload["request_id"], second.payload["request_id"]])
    for _ in range(200):  # released once done, then frozen like any idle container
        if len(pool.stats.post_response_ms) == 2:
            break
        time.sleep(0.01)
    assert max(pool.stats.post_response_ms) >= 550
    assert _settled_state(first.payload["pid"]) == "T"
    third = pool.invoke({"seconds": 0.0, "path": str(written)})
    assert third.payload["pid"] in {first.payload["pid"], second.payload["pid"]}  # warm again
    assert len(_lines(written, 3)) == 3


def test_work_deferred_before_a_reclaim_is_never_lost(
    deferring: Path, pools: list[FunctionPool], tmp_path: Path
) -> None:
    pool = _pool(deferring, "handler", module="deferring")
    pools.append(pool)
    written = tmp_path / "written.txt"

    with ThreadPoolExecutor(3) as callers:
        answers = list(callers.map(lambda _: pool.invoke({"seconds": 0.3, "path": str(written)}), range(3)))
    pool.reclaim(idle_seconds=0)  # takes only idle containers: the ones still working are busy
    for _ in range(300):
        if pool.containers() == 0 or len(pool.stats.post_response_ms) == 3:
            break
        time.sleep(0.01)
    pool.reclaim(idle_seconds=0)

    assert sorted(_lines(written, 3)) == sorted(a.payload["request_id"] for a in answers)


def test_an_extension_registers_only_in_the_init_phase(
    deferring: Path, pools: list[FunctionPool], tmp_path: Path
) -> None:
    pool = _pool(deferring, "handler", module="deferring")
    pools.append(pool)

    answer = pool.invoke({"seconds": 0.0, "path": str(tmp_path / "w.txt"), "register_late": True})

    assert answer.payload["late"] is False


def test_a_missing_hand_over_holds_the_container_only_until_the_deadline(
    deferring: Path, pools: list[FunctionPool], tmp_path: Path
) -> None:
    pool = _pool(deferring, "handler", module="deferring", timeout_s=1)
    pools.append(pool)
    path = str(tmp_path / "w.txt")

    first = pool.invoke({"seconds": 0.0, "path": path, "forget": True})
    for _ in range(300):
        if pool.stats.post_response_ms:
            break
        time.sleep(0.01)

    assert 800 <= pool.stats.post_response_ms[0] < 1000  # the thread gave up 50 ms before the deadline
    assert pool.invoke({"seconds": 0.0, "path": path}).payload["pid"] == first.payload["pid"]
    assert pool.stats.failures == 0


def test_a_restored_container_runs_its_deferred_work_after_the_answer(
    deferring: Path, pools: list[FunctionPool], tmp_path: Path
) -> None:
    (deferring.parent / "runtime" / "snapshot_restore_py.py").write_text(HOOK_REGISTRY)
    (deferring / "snapstarted.py").write_text(SNAPSTARTED)
    pool = _pool(deferring, "handler", module="snapstarted", snap_start=True)
    pools.append(pool)
    written = tmp_path / "written.txt"

    started = time.perf_counter()
    answer = pool.invoke({"seconds": 0.5, "path": str(written)})

    assert time.perf_counter() - started < 0.5 and answer.payload["active"] is True
    assert pool.stats.restores == 1
    assert _lines(written, 1) == [answer.payload["request_id"]]


def test_work_that_ends_at_once_still_ends_every_invocation(
    deferring: Path, pools: list[FunctionPool]
) -> None:
    # The container's "done" often arrives in the same read as its answer: both must be seen
    pool = _pool(deferring, "handed_over_early", module="deferring", timeout_s=2)
    pools.append(pool)

    for _ in range(40):
        pool.invoke({})
    for _ in range(200):
        if len(pool.stats.post_response_ms) == 40:
            break
        time.sleep(0.01)

    assert len(pool.stats.post_response_ms) == 40 and pool.stats.failures == 0
    assert max(pool.stats.post_response_ms) < 1000  # none waited for the deadline
