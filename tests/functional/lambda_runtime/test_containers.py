"""The emulated Lambda containers enforce Lambda's limits and freeze between invocations.

Each test runs a small handler module from a temporary code asset on the real CPython 3.12, exactly
as the local stack runs the built bundles.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from embedrec_local.lambda_runtime.container import MAX_PAYLOAD_BYTES, InvocationError, RequestTooLargeError
from embedrec_local.lambda_runtime.definitions import FunctionDefinition, find_python312
from embedrec_local.lambda_runtime.pool import FunctionPool

PYTHON = find_python312()
pytestmark = pytest.mark.skipif(PYTHON is None, reason="needs CPython 3.12 (Lambda's python3.12)")

HANDLERS = """
import os, sys, threading, time

ticks = []

def echo(event, context):
    return {"event": event, "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb, "pid": os.getpid(), "path": sys.path[:1],
            "env": sorted(k for k in os.environ if k.startswith("EMBEDREC_"))}

def hog(event, context):
    blocks = [bytearray(1024 * 1024) for _ in range(event["mb"])]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])
    return len(blocks)

def sleep(event, context):
    time.sleep(event["seconds"])
    return "woke"

def big(event, context):
    return "x" * event["bytes"]

def background(event, context):
    def tick():
        while True:
            ticks.append(time.time())
            time.sleep(0.01)
    if not ticks:
        threading.Thread(target=tick, daemon=True).start()
        time.sleep(0.05)
    return len(ticks)

def fail(event, context):
    raise ValueError("bad input")

def spin(event, context):
    until = time.process_time() + event["cpu_s"]
    while time.process_time() < until:
        pass
    return "spun"
"""


def _pool(
    code: Path,
    handler: str,
    *,
    memory_mb: int = 128,
    timeout_s: float = 5.0,
    module: str = "handlers",
    snap_start: bool = False,
    log_sink: Callable[[str], None] | None = None,
) -> FunctionPool:
    definition = FunctionDefinition(
        name=handler,
        handler=f"{module}.{handler}",
        memory_mb=memory_mb,
        timeout_s=timeout_s,
        layers=(),
        environment={"EMBEDREC_FROM_TEMPLATE": "1"},
        code_dir=code,
        runtime_dir=code.parent / "runtime",
        snap_start=snap_start,
    )
    assert PYTHON is not None
    return FunctionPool(definition, PYTHON, {"AWS_REGION": "us-east-1"}, max_containers=4, log_sink=log_sink)


def _settled_state(pid: int) -> str:
    """The process state once a signal just sent has been delivered ('T': stopped)."""
    state = ""
    for _ in range(200):
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        if state == "T":
            break
        time.sleep(0.01)
    return state


def test_a_container_runs_the_handler_with_only_its_environment_and_is_frozen_between_calls(
    code: Path, pools: list[FunctionPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDREC_LEAKED_FROM_HOST", "1")
    pool = _pool(code, "echo", memory_mb=256, timeout_s=3)
    pools.append(pool)

    first = pool.invoke({"n": 1})
    answer = first.payload

    assert answer["event"] == {"n": 1} and answer["memory"] == "256" and answer["path"] == [str(code)]
    assert answer["env"] == ["EMBEDREC_FROM_TEMPLATE"]  # nothing from the host's environment
    assert 0 < answer["remaining_ms"] <= 3000
    assert first.init_ms is not None  # a cold start
    assert _settled_state(answer["pid"]) == "T"  # stopped (SIGSTOP) until the next invocation
    second = pool.invoke({"n": 2})
    assert second.payload["pid"] == answer["pid"] and second.init_ms is None  # the same warm container


def test_an_invocation_reports_the_cpu_time_it_used_and_a_cold_start_its_init_cpu(
    code: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(code, "spin")
    pools.append(pool)

    first = pool.invoke({"cpu_s": 0.3})
    second = pool.invoke({"cpu_s": 0.0})

    assert 280 <= first.cpu_ms <= 2000  # clock ticks of 10 ms, whatever the wait for a core
    assert first.init_cpu_ms is not None and second.init_cpu_ms is None
    assert second.cpu_ms < first.cpu_ms
    assert pool.snapshot()["cpu_ms"] == [round(first.cpu_ms, 1), round(second.cpu_ms, 1)]


def test_a_thread_left_running_does_not_run_while_the_container_is_frozen(
    code: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(code, "background")
    pools.append(pool)
    ticked = pool.invoke({}).payload

    time.sleep(0.3)  # frozen: the thread cannot tick meanwhile

    assert pool.invoke({}).payload - ticked <= 3


def test_memory_above_the_configured_size_kills_the_container(code: Path, pools: list[FunctionPool]) -> None:
    pool = _pool(code, "hog", memory_mb=128)
    pools.append(pool)

    with pytest.raises(InvocationError) as failed:
        pool.invoke({"mb": 400})

    assert failed.value.error["errorType"] == "Runtime.OutOfMemory"
    assert pool.containers() == 0
    assert pool.invoke({"mb": 10}).payload == 10  # a fresh container takes the next invocation


def test_an_invocation_past_the_timeout_is_killed(code: Path, pools: list[FunctionPool]) -> None:
    pool = _pool(code, "sleep", timeout_s=1)
    pools.append(pool)

    with pytest.raises(InvocationError) as failed:
        pool.invoke({"seconds": 30})

    assert failed.value.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in failed.value.error["errorMessage"]
    assert pool.containers() == 0


def test_payloads_above_six_mb_are_refused_both_ways(code: Path, pools: list[FunctionPool]) -> None:
    echo, big = _pool(code, "echo"), _pool(code, "big", memory_mb=512)
    pools += [echo, big]

    with pytest.raises(RequestTooLargeError):
        echo.invoke({"blob": "x" * MAX_PAYLOAD_BYTES})
    with pytest.raises(InvocationError) as failed:
        big.invoke({"bytes": MAX_PAYLOAD_BYTES + 1})

    assert echo.stats.cold_starts == 0  # refused before any container ran
    assert failed.value.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert len(json.dumps(big.invoke({"bytes": 1000}).payload)) == 1002


def test_a_handler_error_is_lambdas_error_payload_and_the_container_stays_warm(
    code: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(code, "fail")
    pools.append(pool)

    with pytest.raises(InvocationError) as failed:
        pool.invoke({})

    assert (failed.value.error["errorType"], failed.value.error["errorMessage"]) == (
        "ValueError",
        "bad input",
    )
    assert pool.containers() == 1


def test_concurrent_invocations_scale_out_and_idle_containers_are_reclaimed(
    code: Path, pools: list[FunctionPool]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = _pool(code, "sleep")
    pools.append(pool)
    with ThreadPoolExecutor(3) as runner:
        assert list(runner.map(lambda _: pool.invoke({"seconds": 0.5}).payload, range(3))) == ["woke"] * 3
    assert pool.stats.cold_starts == 3 and pool.containers() == 3

    pids = [c.process.pid for c in pool._idle]  # noqa: SLF001
    assert pool.reclaim(idle_seconds=0) == 3
    assert pool.containers() == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# The runtime's hook registry, as Lambda's Python runtime provides it (the local runtime's packages
# carry AWS's own ``snapshot_restore_py``; these tests use a bare runtime directory).
HOOK_REGISTRY = """
_before, _after = [], []
def register_before_snapshot(func, *args, **kwargs):
    _before.append((func, args, kwargs)); return func
def register_after_restore(func, *args, **kwargs):
    _after.append((func, args, kwargs)); return func
def get_before_snapshot(): return _before
def get_after_restore(): return _after
"""

SNAPSTARTED = """
import os
from snapshot_restore_py import register_after_restore, register_before_snapshot

state = {"imported_in": os.getpid(), "before_snapshot_in": None, "restored_in": []}

def before(): state["before_snapshot_in"] = os.getpid()
def after(tag): state["restored_in"].append((os.getpid(), tag))
register_before_snapshot(before)
register_after_restore(after, "renewed")

def handler(event, context):
    print(f"answered by {os.getpid()}")
    return {**state, "pid": os.getpid(), "initialization": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


def test_snap_start_containers_are_restored_from_one_init_and_run_the_restore_hooks(
    code: Path, pools: list[FunctionPool]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (code.parent / "runtime" / "snapshot_restore_py.py").write_text(HOOK_REGISTRY)
    (code / "snapstarted.py").write_text(SNAPSTARTED)
    logs: list[str] = []
    pool = _pool(code, "handler", module="snapstarted", snap_start=True, log_sink=logs.append)
    pools.append(pool)

    # Two containers at once, then a third after both are reclaimed
    with ThreadPoolExecutor(2) as runner:
        first = list(runner.map(lambda n: pool.invoke({"n": n}), range(2)))
    assert pool.reclaim(idle_seconds=0) == 2
    third = pool.invoke({"n": 3})

    # Each one is a copy of the one process that imported the handler and ran the before-snapshot hook
    answers = [result.payload for result in (*first, third)]
    snapshot_pid = answers[0]["imported_in"]
    assert {a["imported_in"] for a in answers} == {snapshot_pid}
    assert {a["before_snapshot_in"] for a in answers} == {snapshot_pid}
    assert len({a["pid"] for a in answers} | {snapshot_pid}) == 4
    # And each ran the after-restore hook once, in itself, with the arguments it was registered with
    assert [a["restored_in"] for a in answers] == [[[a["pid"], "renewed"]] for a in answers]
    assert {a["initialization"] for a in answers} == {"snap-start"}
    # A restore is a cold start, whose init is the restore (not an import) and is frozen afterwards
    assert all(result.init_ms is not None for result in (*first, third))
    assert pool.stats.cold_starts == pool.stats.restores == 3 and pool.snapshot()["snap_start"] is True
    assert _settled_state(third.payload["pid"]) == "T"
    assert pool.invoke({"n": 4}).payload["pid"] == third.payload["pid"]  # warm
    # Each container's log lines arrive on their own stream (whole lines, never interleaved)
    for _ in range(100):
        if len([line for line in logs if line.startswith("answered by")]) == 4:
            break
        time.sleep(0.01)
    assert sorted(line.strip() for line in logs if line.startswith("answered by")) == sorted(
        f"answered by {pid}" for pid in [*(a["pid"] for a in answers), third.payload["pid"]]
    )


def test_a_snapshot_whose_init_fails_fails_every_restore(code: Path, pools: list[FunctionPool]) -> None:
    (code / "broken.py").write_text("raise RuntimeError('no config')\ndef handler(event, context): ...\n")
    pool = _pool(code, "handler", module="broken", snap_start=True)
    pools.append(pool)

    for _ in range(2):
        with pytest.raises(InvocationError) as failed:
            pool.invoke({})
        assert failed.value.error["errorType"] == "Runtime.ImportModuleError"
        assert "no config" in failed.value.error["errorMessage"]
