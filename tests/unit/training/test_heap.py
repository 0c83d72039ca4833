"""The training heap policy: freed large tensors are reused instead of being faulted in again."""

from __future__ import annotations

import resource

import pytest
import torch

from training_jobs.heap import _glibc, retained_heap

BIG = 48 * 1024 * 1024 // 4  # floats: above glibc's largest mmap threshold (32 MB)


def _step_faults() -> int:
    """Minor page faults of one 'training step': small and large tensors allocated, used and freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    small = torch.randn(1024, 64)
    big = torch.ones(BIG)
    scaled = small * 2
    del small, big, scaled
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(_glibc() is None, reason="the heap policy applies to glibc only")
def test_retained_heap_stops_refaulting_freed_tensors() -> None:
    # Given the default policy: every step maps the big tensor afresh and faults in all its pages
    default = min(_step_faults() for _ in range(4))
    assert default >= BIG * 4 // 4096 // 2
    # When the same steps run inside the retained heap
    with retained_heap() as applied:
        faults = [_step_faults() for _ in range(6)]
    # Then after the first steps the memory is reused: (almost) no page faults
    assert applied
    assert min(faults[2:]) < default // 20


def test_retained_heap_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("training_jobs.heap._glibc", lambda: None)
    with retained_heap() as applied:
        assert not applied
