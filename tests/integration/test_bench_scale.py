"""``make bench-scale`` at a small size: every stage runs in its own process against a moto server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from embedrec_local import bench_scale

LAST_LINE = re.compile(
    r"^bench-scale: rows=(\d+) users=(\d+) items=(\d+) within_limits=(\d+)/(\d+) peak_rss_mb=\d+ wall_s=\d+$"
)


def test_a_small_tenant_goes_through_every_stage_within_its_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "stages.json"

    status = bench_scale.main(
        ["--rows", "20000", "--users", "2000", "--items", "500", "--requests", "50", "--json", str(results)]
    )

    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match is not None, last
    rows, users, items, within, stages = (int(group) for group in match.groups())
    assert (rows, users, items) == (20000, 2000, 500)
    assert status == 0 and within == stages
    names = results.read_text()
    for stage in (
        "ingest items",
        "ingest interactions",
        "prepare dataset",
        "train: fit",
        "export",
        "publish",
        "cold load",
        "warm serving",
    ):
        assert f'"{stage}"' in names
