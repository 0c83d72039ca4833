"""The limits ``bench-scale`` compares against are the deployed ones."""

from __future__ import annotations

from cdk import names
from embedrec_local import bench_scale


def test_the_training_limit_is_the_batch_job_definitions() -> None:
    assert bench_scale.TRAINING_MEMORY_MIB == names.TRAINING_MEMORY_MIB
    assert bench_scale.TRAINING_TIMEOUT_S == names.TRAINING_TIMEOUT_HOURS * 3600
