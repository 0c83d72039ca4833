"""The training heap policy: freed large tensors are reused instead of being faulted in again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training_jobs.heap import _glibc, retained_heap

# Measured in a fresh interpreter: glibc's heap is process-wide, and whatever ran earlier in the test
# process (a training test's retained heap leaves freed chunks behind) decides where the next big block
# comes from.
_PROBE = """
import json, resource, torch
from training_jobs.heap import retained_heap

BIG = 48 * 1024 * 1024 // 4  # floats: above glibc's largest mmap threshold (32 MB)

def step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    small = torch.randn(1024, 64)
    big = torch.ones(BIG)
    scaled = small * 2
    del small, big, scaled
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = [step() for _ in range(4)]
with retained_heap() as applied:
    retained = [step() for _ in range(6)]
print(json.dumps(
    {"big_pages": BIG * 4 // 4096, "default": default, "retained": retained, "applied": applied}
))
"""


@pytest.mark.skipif(_glibc() is None, reason="the heap policy applies to glibc only")
def test_retained_heap_stops_refaulting_freed_tensors() -> None:
    # Given "training steps" that allocate, use and free a big tensor, first under the default policy
    root = Path(__file__).resolve().parents[3]
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=root
    )
    measured = json.loads(probe.stdout)
    # Then every default step maps the big tensor afresh and faults in all its pages
    default = min(measured["default"])
    assert default >= measured["big_pages"] // 2
    # And inside the retained heap, after the first steps the memory is reused: (almost) no page faults
    assert measured["applied"]
    assert min(measured["retained"][2:]) < default // 20


def test_retained_heap_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("training_jobs.heap._glibc", lambda: None)
    with retained_heap() as applied:
        assert not applied
