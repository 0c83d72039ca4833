"""The contract (``contract/``) is the one definition of what the deployables share.

A scan of every module of ``functions/``, ``training_jobs/``, the local stack, the CDK app and the
layer build fails when one of them restates a fact the contract holds (a second ``models/`` key
builder, an artifact file name, an interaction-weight table, a list of model types, S3 error codes,
a popular entry or manifest written by hand ...): import it from ``contract`` instead.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from contract import interactions, layout, model_types, s3, workflow
from contract.manifest import Manifest, trained_until
from contract.popular import PopularDocument
from contract.training_job import TrainingJobFields

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contract"
SCANNED = ("functions", "training_jobs", "localstack/embedrec_local", "cdk", "layers/build.py")
ASL = ROOT / "functions" / "training" / "training_workflow.asl.json"

#: Names of files whose place is a fact of the contract (exact string literals, or a key's last part).
FILE_NAMES = frozenset(
    {
        layout.USER_TOWER,
        layout.ITEM_INDEX,
        layout.LOOKUP,
        layout.POPULAR,
        layout.MANIFEST,
        layout.DECISION,
        layout.SNAPSHOT_INTERACTIONS,
        "serving.json.gz",
    }
)
#: ``items.parquet`` is also the name of ingestion's own catalogue (``catalog/{tenant}/items.parquet``):
#: only a literal that is the name alone is a restated snapshot/artifact file.
EXACT_NAMES = frozenset({layout.ITEMS_TABLE, layout.SNAPSHOT_ITEMS})
S3_CODES = s3.NOT_FOUND_CODES | {s3.NO_SUCH_BUCKET}
TYPE_NAMES = frozenset(interactions.INTERACTION_TYPES)
TRAINED_TYPES = frozenset(get_args(model_types.TrainedModelType))
POPULAR_KEYS = frozenset({"item_id", "score", "title"})
#: Sections only a manifest has (a registry record shares its metrics, model type and dates).
MANIFEST_KEYS = frozenset(
    {"schema_version", "data_window", "embedding_dim", "n_users", "n_items", "onnx", "similarity", "files"}
)
CONTRACT_NAMES = frozenset({"ModelType", "TrainedModelType", "InteractionType", "MODEL_TYPES"})


def _modules() -> list[Path]:
    paths: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        paths.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return paths


def _docstrings(tree: ast.Module) -> set[int]:
    """Statement-level string constants (docstrings, attribute docs): prose may name files and keys."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _constants(node: ast.AST) -> set[object]:
    """The constants displayed by a tuple/list/set, a ``Literal[...]``-style subscript, or one constant."""
    if isinstance(node, ast.Subscript):
        node = node.slice
    elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {element.value for element in elements if isinstance(element, ast.Constant)}


def _in_string(value: str) -> Iterator[str]:
    if value.lstrip("^").startswith(layout.MODELS_PREFIX):
        yield f"an artifact key built by hand ({value!r}): use contract.layout"
    if value in FILE_NAMES or value.endswith(tuple(f"/{name}" for name in FILE_NAMES)):
        yield f"an artifact or catalogue file name ({value!r}): use contract.layout"
    if value in EXACT_NAMES:
        yield f"a snapshot/artifact file name ({value!r}): use contract.layout"
    if value in S3_CODES:
        yield f"an S3 not-found code ({value!r}): use contract.s3"
    if value == layout.WINDOW_METADATA_KEY.decode():
        yield "the snapshot window's metadata key: use contract.layout.WINDOW_METADATA_KEY"


def _in_display(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Subscript):
        shown = _constants(node)
        if len(shown & TYPE_NAMES) >= 3:
            yield "a list of interaction types: use contract.interactions.INTERACTION_TYPES"
        if len(shown & TRAINED_TYPES) >= 3:
            yield "a list of model types: use contract.model_types"
        if _numbers(node) == interactions.WEIGHTS_BY_CODE:
            yield "interaction weights by code: use contract.interactions.WEIGHTS_BY_CODE"
    elif isinstance(node, ast.Dict):
        keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
        if len(keys & TYPE_NAMES) >= 3:
            yield "an interaction-type table (weights?): use contract.interactions"
        if POPULAR_KEYS <= keys:
            yield "a popular entry written by hand: use contract.popular.PopularEntry"
        if len(keys & MANIFEST_KEYS) >= 3:
            yield "a manifest written by hand: use contract.manifest.Manifest"


def _in_definition(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.ClassDef) and node.name in CONTRACT_NAMES:
        yield f"class {node.name}: the contract defines it"
    elif isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in CONTRACT_NAMES:
                yield f"{target.id} = ...: the contract defines it (import it)"
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "data_window"
    ):
        yield "a manifest's data window read by hand: use contract.manifest.trained_until"


def _numbers(node: ast.AST) -> tuple[object, ...]:
    """The numbers a tuple or list displays, in order (empty unless all its elements are numbers)."""
    elements = node.elts if isinstance(node, ast.Tuple | ast.List) else []
    values = tuple(
        e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, int | float)
    )
    return values if len(values) == len(elements) else ()


def _restatements(tree: ast.Module) -> Iterator[tuple[int, str]]:
    prose = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            if id(node) not in prose:
                value = node.value.decode(errors="replace") if isinstance(node.value, bytes) else node.value
                yield from ((line, why) for why in _in_string(value))
        else:
            yield from ((line, why) for why in _in_display(node))
            yield from ((line, why) for why in _in_definition(node))


def test_no_module_restates_a_fact_of_the_contract() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {why}"
        for path in _modules()
        for line, why in _restatements(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'KEY = f"models/{tenant}/{version}/manifest.json"',
        'PATH = prefix + "popular.json"',
        'CODES = {"NoSuchKey", "404"}',
        'WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0}',
        'Kind = Literal["lightgcn", "two_tower", "als", "ease"]',
        "class ModelType(str): ...",
        'entry = {"item_id": "a", "score": 1.0, "title": "A"}',
        'end = manifest.get("data_window")',
        "TYPE_WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0])",
        'TYPES = ("view", "click", "purchase")',
        'm = {"schema_version": 1, "embedding_dim": 8, "files": {}}',
        'KEY = b"embedrec.window"',
        'ok = [1 for _ in "serving.json.gz"]',
    ],
)
def test_the_scan_catches_a_second_definition(source: str) -> None:
    assert list(_restatements(ast.parse(source)))


def test_the_contract_needs_nothing_but_pydantic_and_the_standard_library() -> None:
    imported: set[str] = set()
    for path in CONTRACT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"contract", "pydantic"}


def test_interaction_codes_and_weights_are_one_table() -> None:
    assert tuple(interactions.INTERACTION_CODES) == interactions.INTERACTION_TYPES
    assert interactions.WEIGHTS_BY_CODE == tuple(interactions.INTERACTION_WEIGHTS.values())
    assert interactions.weight_of("purchase") == interactions.INTERACTION_WEIGHTS["purchase"]
    assert interactions.weight_of("unknown") == 1.0
    assert model_types.DEFAULT_MODEL_TYPE in model_types.MODEL_TYPES


def test_keys_nest_under_the_tenant() -> None:
    key = layout.manifest_key("t1", "lightgcn_v2")
    assert key == "models/t1/lightgcn_v2/manifest.json"
    assert key.startswith(layout.tenant_models_prefix("t1"))
    assert layout.folder_of(key) == layout.version_prefix("t1", "lightgcn_v2")
    assert layout.decision_key("t1", "v") == "models/t1/v/decision.json"
    assert layout.popular_key("t1") == "catalog/t1/popular.json"


def test_manifest_document_round_trips_and_names_its_data_end() -> None:
    manifest = Manifest(
        version="v1", data_window={"end": "2025-01-02T00:00:00Z"}, created_at="2025-01-03T00:00:00Z"
    )
    document = manifest.with_files({"b": b"xy", "a": b"z"}).document()
    assert list(document["files"]) == ["a", "b"] and document["files"]["b"]["bytes"] == 2
    assert "gate" not in document  # sections never set are not written
    parsed = Manifest.model_validate(json.loads(json.dumps(document)))
    assert parsed.files["b"].size == 2
    assert parsed.trained_until == trained_until(document)
    assert (
        trained_until(document) is not None
        and trained_until(document).isoformat() == "2025-01-02T00:00:00+00:00"
    )
    assert trained_until({"created_at": "2025-01-03T00:00:00"}).tzinfo is not None  # type: ignore[union-attr]


def test_popular_document_reads_what_older_writers_wrote() -> None:
    parsed = PopularDocument.model_validate(
        {
            "overall": [{"item_id": 7, "price": float("nan")}, {"item_id": "b", "price": True}],
            "by_category": {},
        }
    )
    assert [(e.item_id, e.title, e.price) for e in parsed.overall] == [("7", "7", None), ("b", "b", None)]
    with pytest.raises(ValueError):
        PopularDocument.model_validate({"overall": [{"title": "no id"}]})


def test_a_job_record_field_unknown_to_the_contract_is_refused_by_both_writers() -> None:
    from functions.training.store.training_jobs import TrainingJobRepository as WorkflowJobs
    from training_jobs.storage import TrainingJobRepository as ContainerJobs

    class Table:
        def update_item(self, **kwargs: Any) -> None:
            raise AssertionError(f"written: {kwargs}")

    with pytest.raises(ValidationError):
        # The workflow's writer takes only TrainingJobFields, which refuses the unknown field.
        WorkflowJobs(Table()).update("t", "job_1", TrainingJobFields.model_validate({"stauts": "failed"}))
    with pytest.raises(ValidationError):
        ContainerJobs(Table(), "t", "job_1")._update({"progres": 5})
    assert {"status", "progress", "artifacts_prefix", "dataset"} <= set(TrainingJobFields.model_fields)


def _asl_paths(asl: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for name, state in asl["States"].items():
        for choice in state.get("Choices", []):
            yield name, choice["Variable"], choice.get("StringEquals", choice.get("BooleanEquals"))
        if "SecondsPath" in state:
            yield name, state["SecondsPath"], None


def test_the_state_machine_reads_what_the_task_models_write() -> None:
    asl = json.loads(ASL.read_text())
    # Where each task's output lands, and the model that output is.
    outputs = {
        "$.dataset": workflow.PreparedDataset,
        "$.training": workflow.TrainingState,
        "$.evaluation": workflow.Evaluation,
        "$.promotion": workflow.Promotion,
        "$.failure": workflow.FailureRecord,
    }
    for name, path, value in _asl_paths(asl):
        if path == "$.job_id":
            assert "job_id" in workflow.ExecutionInput.model_fields, name
            continue
        if path == "$.poll_seconds":
            assert "poll_seconds" in workflow.ExecutionInput.model_fields, name
            continue
        parent, _, field = path.rpartition(".")
        model = outputs[parent]
        assert field in model.model_fields, (name, path)
        if field == "state":
            assert value in get_args(workflow.BatchState), (name, value)
    result_paths = {
        state["ResultPath"] for state in asl["States"].values() if state.get("Type") == "Task"
    } - {"$", "$.error"}
    assert result_paths == set(outputs)
    # TrainingFailed builds the same error object a Catch stores and CancelTraining returns.
    parameters = asl["States"]["TrainingFailed"]["Parameters"]
    aliases = {field.alias for field in workflow.StepError.model_fields.values()}
    assert {key.removesuffix(".$") for key in parameters} == aliases
