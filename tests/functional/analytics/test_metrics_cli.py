"""``embedrec metrics``: EMF written by the functions, forwarded to (moto) CloudWatch and printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedrec_local.cli import main
from embedrec_local.emf import emf_metric_data
from embedrec_local.provision import LocalNames
from functions.analytics import telemetry


def test_emf_from_a_log_is_forwarded_and_printed(
    aws_env: LocalNames, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a log in which the analytics hook wrote its EMF document, among other output
    telemetry.interactions_attributed(stored=12, attributed=3, clicks=2, purchases=1, revenue=399.99)
    log = tmp_path / "stack.log"
    log.write_text("INFO starting\n" + capsys.readouterr().out + "not json {\n")
    data = list(emf_metric_data(log.read_text().splitlines()))
    assert {datum["MetricName"] for _ns, datum in data} == {
        "InteractionsStored",
        "RecommendationsAttributed",
        "RecommendationClicks",
        "RecommendationPurchases",
        "RecommendationRevenue",
    }
    assert all(ns == "embedrec" for ns, _datum in data)

    # When `embedrec metrics --emf stack.log` runs
    assert main(["metrics", "--emf", str(log), "--minutes", "30"]) == 0

    # Then each metric is printed with its service dimension and sum
    out = capsys.readouterr().out
    assert "forwarded 5 EMF metric(s)" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert "InteractionsStored" in lines, out
    assert lines["InteractionsStored"][1] == "service=embedrec-analytics"
    assert float(lines["InteractionsStored"][3]) == 12
    assert float(lines["RecommendationRevenue"][3]) == pytest.approx(399.99)


def test_nothing_to_print_is_said_plainly(aws_env: LocalNames, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--namespace", "nothing-here"]) == 0
    assert "no metrics in namespace 'nothing-here'" in capsys.readouterr().out
    assert main(["metrics", "--minutes", "0"]) == 2
