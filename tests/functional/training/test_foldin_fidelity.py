"""Fold-in fidelity: on generated shop data, users represented only by their history through the exported
ONNX user tower rank their held-out items at >= 90 % of the NDCG@10 that their trained vectors reach, for
every model the job can publish (the full-size figure per model is in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
import torch

from training_jobs.candidate_fit import train_candidate
from training_jobs.candidate_plan import CandidateSpec
from training_jobs.config import TrainingConfig
from training_jobs.evaluation import Evaluator
from training_jobs.fidelity import foldin_fidelity
from training_jobs.snapshot import PreparedData, prepare_data

sample_data = pytest.importorskip("embedrec_local.sample_data")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    directory: Path = tmp_path_factory.mktemp("shop")
    summary = sample_data.generate_sample_data(directory, users=1_500, items=600, interactions=12_000)
    interactions = pcsv.read_csv(summary.interactions_path)
    timestamps = pc.cast(interactions["timestamp"], pa.timestamp("ms", tz="UTC"))
    interactions = interactions.set_column(
        interactions.column_names.index("timestamp"), "timestamp", timestamps
    )
    return prepare_data(interactions, pcsv.read_csv(summary.items_path), TrainingConfig())


@pytest.mark.parametrize(
    "spec",
    [
        CandidateSpec("als", {"factors": 32, "regularization": 1.0, "alpha": 10.0, "damping": 0.0}),
        CandidateSpec("ease", {"l2": 50.0, "rank": 128}),
        CandidateSpec("ease", {"l2": 50.0, "rank": 600, "binary": True}),  # exact B of the binary X
        CandidateSpec("graph_filter", {"rank": 128, "beta": 0.5}),
        CandidateSpec("lightgcn", {"epochs": 6}),
    ],
    ids=lambda spec: spec.model_type + ("_binary_exact" if spec.params.get("binary") else ""),
)
def test_history_only_users_rank_nearly_as_well_as_trained_vectors(
    spec: CandidateSpec, shop: PreparedData
) -> None:
    # Given a model trained on the shop's training split
    config = TrainingConfig(embedding_dim=32, num_negatives=0, temperature=0.2, normalize=True)
    fitted = train_candidate(spec, shop.train, config, shop.catalogue, CPU)[0]
    evaluator = Evaluator(shop.train, shop.val_users, shop.val_items, CPU)

    # When every user is folded in from their history alone by the exported ONNX tower
    fidelity = foldin_fidelity(fitted.model, shop.train, evaluator)

    # Then the fold-in keeps >= 90 % of the trained vectors' NDCG@10 (and the model learned something)
    assert fidelity.trained_ndcg_10 > 0.01
    assert fidelity.ratio >= 0.9, fidelity
