"""Property-based fuzzing of an app from its own OpenAPI schema (schemathesis), in-process over ASGI.

Each operation gets a share of the request budget; operations whose input space runs out early (no
parameters) hand their share to the others. Every response is checked for 5xx and for conformance to
the documented schema, content type and headers; failures are collected (one per operation and
check), not raised, so one run reports everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from schemathesis import checks
from schemathesis.core.failures import FailureGroup

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
]
HeadersFor = Callable[[str, str], dict[str, str]]  # (method, path template) → request headers


@dataclass
class FuzzReport:
    """What one app's run did and found."""

    requests: int = 0
    operations: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # "<op> <check>" → a reproduction

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(count for status, count in self.statuses.items() if status >= 500)


def fuzz_app(app: FastAPI, *, requests: int, headers_for: HeadersFor, seed: int = 8) -> FuzzReport:
    """Send at least ``requests`` generated requests (where the schema allows as many) to ``app``."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    report = FuzzReport(operations=len(operations))
    pending = list(operations)
    round_no = 0
    while pending and report.requests < requests and round_no < 6:
        share = math.ceil((requests - report.requests) / len(pending))
        pending = [
            op for op in pending if _fuzz_operation(op, share, seed + round_no, headers_for, report) >= share
        ]
        round_no += 1
    return report


def _fuzz_operation(
    operation: Any, examples: int, seed: int, headers_for: HeadersFor, report: FuzzReport
) -> int:
    """Run ``examples`` generated cases of one operation; returns how many were actually sent."""
    headers = headers_for(operation.method.upper(), operation.path)
    sent = 0

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        report.requests += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # an unhandled exception: API Gateway would answer 500
            report.statuses[500] = report.statuses.get(500, 0) + 1
            label = f"{operation.method.upper()} {operation.path} unhandled {type(exc).__name__}"
            report.failures.setdefault(label, f"{case.as_curl_command()}\n-> {exc!r}"[:1500])
            return
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            label = f"{operation.method.upper()} {operation.path} {type(exc).__name__}"
            report.failures.setdefault(
                label, f"{case.method} {case.formatted_path} -> {response.status_code}: {exc}"[:1500]
            )

    run()
    return sent
