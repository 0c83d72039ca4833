"""The AWS actions a code path calls, derived from the code itself (for the IAM tests).

A function's code path is the import closure of its handler module inside the repository's packages
(``functions``, ``training_jobs``); every call of a boto3 operation in those modules (``client.get_object``,
``table.update_item``, ``s3.generate_presigned_url("put_object", ...)``) is mapped to the IAM action that
authorises it, using botocore's own service models for the operation names and the few documented
exceptions where the action is not the operation's name (``HeadObject`` needs ``s3:GetObject``...).
Nothing here is a hand list of what a function calls: a new call in the code is a new required action.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from cdk import names

PACKAGES = ("contract", "functions", "training_jobs")
# The services the platform's code talks to (a boto3 client of another service fails the test below).
SERVICES = ("s3", "dynamodb", "batch", "scheduler", "stepfunctions", "secretsmanager", "sqs")
IAM_PREFIX = {"stepfunctions": "states"}  # IAM's service prefix where it differs from boto3's name
# Operations whose IAM action is not their own name (AWS service authorization reference).
S3_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    "head_object": ("s3:GetObject",),
    "head_bucket": ("s3:ListBucket",),
    "list_objects": ("s3:ListBucket",),
    "list_objects_v2": ("s3:ListBucket",),
    "list_object_versions": ("s3:ListBucketVersions",),
    "copy_object": ("s3:GetObject", "s3:PutObject"),
    "create_multipart_upload": ("s3:PutObject",),
    "upload_part": ("s3:PutObject",),
    "complete_multipart_upload": ("s3:PutObject",),
    "abort_multipart_upload": ("s3:AbortMultipartUpload",),
    "delete_objects": ("s3:DeleteObject",),
    # boto3's managed transfers
    "upload_file": ("s3:PutObject",),
    "upload_fileobj": ("s3:PutObject",),
    "download_file": ("s3:GetObject",),
    "download_fileobj": ("s3:GetObject",),
}
DYNAMODB_RESOURCE_METHODS: dict[str, tuple[str, ...]] = {"batch_writer": ("dynamodb:BatchWriteItem",)}
PRESIGNERS = ("generate_presigned_url", "generate_presigned_post")
_IMPLICIT_METHODS = frozenset(
    {"__init__", "__post_init__", "__call__", "__enter__", "__exit__", "__iter__", "__next__", "__del__"}
)


@cache
def operations() -> dict[str, tuple[str, ...]]:
    """snake_case operation → the IAM actions it needs, for every operation of ``SERVICES``."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        prefix = IAM_PREFIX.get(service, service)
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
    for method, actions in (*S3_EXCEPTIONS.items(), *DYNAMODB_RESOURCE_METHODS.items()):
        found[method] = set(actions)
    return {method: tuple(sorted(actions)) for method, actions in found.items()}


def module_path(module: str) -> Path | None:
    """The source file of a repository module (a package's ``__init__``), or None outside the repo."""
    base = names.ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node executed at run time (``if TYPE_CHECKING:`` bodies left out)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(module: str, tree: ast.AST) -> Iterator[str]:
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
    parent = module.rpartition(".")[0]
    while parent:  # importing a module runs its packages' __init__ too
        yield parent
        parent = parent.rpartition(".")[0]


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def closure(entry_modules: Iterable[str]) -> set[str]:
    """The repository modules imported (transitively, at run time) from the entry modules."""
    seen: set[str] = set()
    pending = list(entry_modules)
    while pending:
        module = pending.pop()
        if module in seen or not module.startswith(PACKAGES):
            continue
        path = module_path(module)
        if path is None:
            continue
        seen.add(module)
        pending.extend(_imports(module, _tree(path)))
    return seen


@dataclass(frozen=True)
class Call:
    """One boto3 operation call in the code."""

    module: str
    line: int
    method: str
    actions: tuple[str, ...]


def required_actions(handler: str) -> dict[str, list[Call]]:
    """IAM action → the calls reachable from the handler that need it."""
    needed: dict[str, list[Call]] = {}
    for call in reachable_calls(handler):
        for action in call.actions:
            needed.setdefault(action, []).append(call)
    return needed


# Methods of dicts and lists: ``event.get(...)`` on a plain local name is the container's own method, not
# a repository's ``get`` (a parameter annotated with a repository class still reaches its methods).
_CONTAINER_METHODS = frozenset(
    {"get", "pop", "items", "keys", "values", "setdefault", "update", "copy", "append", "extend"}
)
_CONTAINER_TYPES = ("dict", "list", "Mapping", "Sequence", "State", "Any", "set", "tuple")


def _container_names(body: ast.AST) -> set[str]:
    """Local names of a function that hold plain containers: parameters annotated as such (or not at
    all), and names assigned from a literal, a subscript or a call result that is not a class."""
    names: set[str] = set()
    if isinstance(body, ast.FunctionDef | ast.AsyncFunctionDef):
        for argument in (*body.args.posonlyargs, *body.args.args, *body.args.kwonlyargs):
            annotation = ast.unparse(argument.annotation) if argument.annotation is not None else "Any"
            if annotation.startswith(_CONTAINER_TYPES) or annotation.split("[")[0] in _CONTAINER_TYPES:
                names.add(argument.arg)
    for node in ast.walk(body):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict | ast.List | ast.Subscript):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def _called_names(body: ast.AST) -> set[str]:
    """Names of everything a function body calls or passes on (``f()``, ``x.f()``, ``map(f, ...)``)."""
    found: set[str] = set()
    containers = _container_names(body)
    for node in _runtime_nodes(body):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                found.add(func.id)
            elif isinstance(func, ast.Attribute):
                receiver = func.value
                if not (
                    func.attr in _CONTAINER_METHODS
                    and (
                        isinstance(receiver, ast.Dict | ast.Subscript | ast.Call)
                        or (
                            isinstance(receiver, ast.Name)
                            # a container local, or a module constant (``_CACHE.get()``)
                            and (receiver.id in containers or receiver.id.lstrip("_").isupper())
                        )
                    )
                ):
                    found.add(func.attr)
            for argument in (*node.args, *(kw.value for kw in node.keywords)):
                if isinstance(argument, ast.Name):
                    found.add(argument.id)
                elif isinstance(argument, ast.Attribute):
                    found.add(argument.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            found.add(node.id)  # decorators, callbacks stored in fields, dependency factories
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and node.attr not in _CONTAINER_METHODS
        ):
            found.add(node.attr)
    return found


def _definitions(modules: Iterable[str]) -> dict[str, list[tuple[str, ast.AST]]]:
    """Every function, method and class defined in the modules, by name."""
    found: dict[str, list[tuple[str, ast.AST]]] = {}
    for module in modules:
        path = module_path(module)
        assert path is not None
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.setdefault(node.name, []).append((module, node))
    return found


def reachable_calls(handler: str) -> list[Call]:
    """The boto3 calls reachable from one handler function (``module.function``).

    A call graph by name over the handler's import closure: every definition whose name the reached
    code mentions is reached (an over-approximation where names repeat — a method ``get`` reaches every
    ``get`` — which errs on the side of requiring a grant, never of missing one).
    """
    module, _, function = handler.rpartition(".")
    modules = closure([module])
    definitions = _definitions(modules)
    known = operations()
    reached: set[int] = set()
    pending = [(module, node) for module_name, node in definitions.get(function, []) if module_name == module]
    if not pending:  # an object such as ``handler = Mangum(app)``: what importing the app registers
        pending = list(_registered(modules))
    found: list[Call] = []
    while pending:
        where, node = pending.pop()
        if id(node) in reached:
            continue
        reached.add(id(node))
        parts: list[ast.AST] = [node]
        if isinstance(node, ast.ClassDef):
            # A class reaches its body and the methods Python calls implicitly; the others are
            # reached by name where code calls them.
            parts = [
                statement
                for statement in node.body
                if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
                or statement.name in _IMPLICIT_METHODS
            ]
            parts.extend(node.decorator_list)
        for part in parts:
            found.extend(_calls_in(where, part, known))
            for name in _called_names(part):
                pending.extend(definitions.get(name, []))
    return found


def _registered(modules: Iterable[str]) -> Iterator[tuple[str, ast.AST]]:
    """Module-level statements of every module, and every decorated function (routes, handlers,
    dependency factories: a decorator registers or wraps them, so the framework may call any)."""
    for module in modules:
        path = module_path(module)
        assert path is not None
        tree = _tree(path)
        for statement in tree.body:
            if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield module, statement
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
                yield module, node


_TRANSACTION_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _transaction_actions(call: ast.Call) -> tuple[str, ...]:
    """A transaction needs the actions of its parts (``Put`` → ``dynamodb:PutItem``...)."""
    parts = {
        _TRANSACTION_ACTIONS[key.value]
        for node in ast.walk(call)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value in _TRANSACTION_ACTIONS
    }
    return tuple(sorted(parts)) or tuple(sorted(set(_TRANSACTION_ACTIONS.values())))


def _calls_in(module: str, tree: ast.AST, known: dict[str, tuple[str, ...]]) -> Iterator[Call]:
    for node in _runtime_nodes(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method in PRESIGNERS:  # the presigned request runs with the signer's permissions
            target = (
                node.args[0]
                if node.args
                else next((kw.value for kw in node.keywords if kw.arg == "ClientMethod"), None)
            )
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                method = target.value
            elif method == "generate_presigned_post":
                method = "put_object"
        if method in ("transact_write_items", "transact_get_items"):
            yield Call(module, node.lineno, method, _transaction_actions(node))
        elif method in known:
            yield Call(module, node.lineno, method, known[method])
