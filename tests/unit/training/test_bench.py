"""The benchmark CLI on a tiny LightGCN-format data set: learning curve and the final summary line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from training_jobs.bench import main, parse_candidates
from training_jobs.bench_candidates import Row, cost_line
from training_jobs.data import load_lightgcn_dataset, split_random_holdout

SUMMARY = re.compile(r"^recall@20=\d\.\d{4} ndcg@20=\d\.\d{4} train_s=\d+\.\d epochs=\d+ device=(cpu|cuda)$")


def _write_dataset(directory: Path) -> None:
    rng = np.random.default_rng(0)
    with (directory / "train.txt").open("w") as train, (directory / "test.txt").open("w") as test:
        for user in range(60):
            items = rng.permutation(np.arange(30) + 30 * (user % 3))[:12]
            train.write(" ".join(map(str, [user, *items[:9]])) + "\n")
            test.write(" ".join(map(str, [user, *items[9:]])) + "\n")


def test_bench_prints_curve_and_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_dataset(tmp_path)
    code = main(
        [
            "--mode",
            "lightgcn",
            "--data",
            str(tmp_path),
            "--epochs",
            "4",
            "--eval-every",
            "2",
            "--batch-size",
            "128",
            "--device",
            "cpu",
            "--tune",
            "temperature=0.2;normalize=0,temperature=1",
            "--tune-budget-s",
            "1",
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any(line.startswith("[test] epoch    2") and "recall@20=" in line for line in lines)
    assert any(line.startswith("selected on validation") for line in lines)
    assert SUMMARY.match(lines[-1]), lines[-1]
    assert lines[-1].endswith("epochs=4 device=cpu")


def test_bench_failure_still_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--device", "cpu"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("recall@20=nan ndcg@20=nan")


def test_validation_split_never_reads_test_pairs(tmp_path: Path) -> None:
    _write_dataset(tmp_path)
    dataset = load_lightgcn_dataset(tmp_path)
    train, val_u, val_i = split_random_holdout(dataset.train, 0.2, seed=0)
    assert train.n_edges + val_u.size == dataset.train.n_edges
    train_pairs = set(zip(dataset.train.users.tolist(), dataset.train.items.tolist(), strict=True))
    assert set(zip(val_u.tolist(), val_i.tolist(), strict=True)) <= train_pairs


def test_candidates_are_parsed_and_checked() -> None:
    assert parse_candidates("temperature=0.1,normalize=1; lr=0.01") == [
        {"temperature": 0.1, "normalize": True},
        {"lr": 0.01},
    ]
    with pytest.raises(ValueError, match="cannot tune"):
        parse_candidates("epochs=3")


def test_cost_line_reports_both_jobs_and_their_ratio() -> None:
    ours = Row("ours graph_filter *", "rank=8", {}, 10.0, 50.0, 1.0, job_cpu_seconds=90.0)
    peer = Row("implicit ALS 8", "reg=0.1", {}, 5.0, 25.0, 1.0, job_cpu_seconds=60.0)
    assert ours.job_seconds == 60.0 and peer.job_seconds == 30.0
    assert cost_line(ours, peer) == (
        "job_s: ours graph_filter 60.0 (select 50.0 + fit 10.0) vs implicit ALS 8 30.0 "
        "(select 25.0 + fit 5.0): 2.00x wall; cpu 90.0 vs 60.0: 1.50x"
    )


def test_candidates_table_shows_whole_job_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_dataset(tmp_path)
    args = ["--data", str(tmp_path), "--device", "cpu", "--threads", "1", "--no-fidelity", "--epochs", "2"]
    code = main([*args, "--als-factors", "8", "--peer-factors", "8", "--peer-grid", "0.1:10"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    header = next(line for line in lines if line.startswith("model "))
    assert header.split()[5:10] == ["fit_s", "select_s", "job_s", "job_cpu_s", "peak_mb"]
    cost = [line for line in lines if line.startswith("job_s: ")]
    assert len(cost) == 1 and "vs implicit ALS 8" in cost[0] and cost[0].endswith("x")
    published = next(line for line in lines if line.startswith("ours ") and " * " in line).split()
    assert float(published[10]) > 0  # the published row's job CPU seconds
    assert SUMMARY.match(lines[-1]), lines[-1]
