"""Row issues, the validation result and the log that collects issues for a table's rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from functions.ingestion import tables as sc

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RowIssue:
    """One problem with one field of one row; ``row`` is the 1-based data row (or JSON element)."""

    row: int
    field: str
    message: str


@dataclass(frozen=True)
class ValidationResult:
    """Accepted rows in the canonical schema, with counts and the reasons for rejections.

    ``errors``/``warnings`` list at most :data:`~functions.ingestion.tables.MAX_LISTED_ISSUES` issues
    each, in row order; ``errors_truncated``/``warnings_truncated`` count the ones left out.
    """

    table: pa.Table
    rows_received: int
    rejected: int
    errors: list[RowIssue]
    warnings: list[RowIssue]
    errors_truncated: int = 0
    warnings_truncated: int = 0

    def __post_init__(self) -> None:
        # The API promises accepted + rejected == received; a violation is a bug here, not bad input.
        if self.rows_received != self.table.num_rows + self.rejected:
            raise ValueError(
                f"inconsistent counts: received {self.rows_received}, "
                f"accepted {self.table.num_rows}, rejected {self.rejected}"
            )

    @property
    def accepted(self) -> int:
        """Number of rows stored."""
        accepted: int = self.table.num_rows
        return accepted


@dataclass
class _IssueGroup:
    """Rows failing one vectorised check; messages are made only for rows that get listed."""

    field: str
    indices: IntArray
    explain: Callable[[int], str]


@dataclass
class IssueLog:
    """Collects issues for the rows of a text table (and for rows the reader already dropped)."""

    row_numbers: IntArray
    field_order: Sequence[str]
    bad: BoolArray = field(init=False)
    _row_level: BoolArray = field(init=False)
    # Rows already rejected for a field, by field: row indices, not masks, so that a record with
    # thousands of made-up keys costs one entry per key, never a mask of every row per key.
    _blocked: dict[str, list[int]] = field(init=False, default_factory=dict)
    _groups: list[_IssueGroup] = field(init=False, default_factory=list)
    _singles: list[tuple[int, str, str]] = field(init=False, default_factory=list)
    _outside: list[RowIssue] = field(init=False, default_factory=list)
    _labels: dict[str, BoolArray] = field(init=False, default_factory=dict)
    #: Lines an unbalanced quote joined to a rejected row, beyond those listed: counted only.
    swallowed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        n = len(self.row_numbers)
        self.bad = np.zeros(n, dtype=np.bool_)
        self._row_level = np.zeros(n, dtype=np.bool_)

    def check(self, name: str, ok: pa.Array | BoolArray, explain: Callable[[int], str]) -> None:
        """Reject rows where ``ok`` is false, unless that row or field was already reported."""
        fail = ~to_numpy_bool(ok) & ~self._row_level
        blocked = self._blocked.get(name)
        if blocked is not None:
            fail[np.array(blocked, dtype=np.int64)] = False
        indices = np.flatnonzero(fail)
        if indices.size:
            self.bad[indices] = True
            self._groups.append(_IssueGroup(name, indices, explain))

    def add(self, index: int, name: str, message: str) -> None:
        """Reject one row for one field, found before the vectorised checks (JSON types, UTF-8)."""
        self.bad[index] = True
        self._singles.append((index, name, message))
        if name == "_row":
            self._row_level[index] = True
        else:
            self._blocked.setdefault(name, []).append(index)

    def add_outside(self, issue: RowIssue) -> None:
        """Record a row the CSV reader could not turn into a table row (wrong field count)."""
        self._outside.append(issue)

    def label_from_context(self, name: str, mask: BoolArray) -> None:
        """Report ``name`` as ``context.<name>`` for rows whose value came from the JSON context."""
        self._labels[name] = mask

    @property
    def rejected(self) -> int:
        return int(self.bad.sum()) + len(self._outside) + self.swallowed

    def finish(self) -> tuple[list[RowIssue], int]:
        """The first issues in (row, column) order, and how many were left out."""
        limit = sc.MAX_LISTED_ISSUES
        rows = self.row_numbers
        rejected_rows = np.concatenate(
            [rows[self.bad], np.array([i.row for i in self._outside], dtype=np.int64)]
        )
        total = (
            sum(g.indices.size for g in self._groups)
            + len(self._singles)
            + len(self._outside)
            + self.swallowed
        )
        if total == 0:
            return [], 0
        # Rows past the limit-th rejected row cannot be listed, so their messages are never built.
        cutoff = np.partition(rejected_rows, limit - 1)[limit - 1] if rejected_rows.size > limit else np.inf
        rank = {name: i for i, name in enumerate(self.field_order)}
        pending: list[tuple[int, int, str, Callable[[], str]]] = []
        for group in self._groups:
            for index in group.indices[rows[group.indices] <= cutoff]:
                pending.append(self._pending(int(index), group.field, rank, group.explain))
        for index, name, message in self._singles:
            if rows[index] <= cutoff:
                pending.append(self._pending(index, name, rank, _constant(message)))
        for issue in self._outside:
            if issue.row <= cutoff:
                pending.append((issue.row, -1, issue.field, _constant(issue.message)))
        pending.sort(key=lambda p: (p[0], p[1]))
        listed = [RowIssue(row, name, make()) for row, _, name, make in pending[:limit]]
        return listed, total - len(listed)

    def _pending(
        self, index: int, name: str, rank: Mapping[str, int], explain: Callable[[int], str]
    ) -> tuple[int, int, str, Callable[[], str]]:
        label = self._labels.get(name)
        shown = f"context.{name}" if label is not None and label[index] else name
        return (
            int(self.row_numbers[index]),
            rank.get(name, len(rank)),
            shown,
            lambda: explain(index),
        )


def _constant(message: str) -> Callable[..., str]:
    return lambda *_: message


def to_numpy_bool(mask: pa.Array | BoolArray) -> BoolArray:
    """A mask as a numpy array; null counts as false."""
    if isinstance(mask, np.ndarray):
        return mask
    filled = pc.fill_null(mask, False)
    result: BoolArray = filled.to_numpy(zero_copy_only=False)
    return result


def show(value: str, limit: int = 60) -> str:
    """An echoed value, clipped and quoted."""
    return repr(clip(value, limit))


def clip(value: str, limit: int = 60) -> str:
    """At most ``limit`` characters of an echoed value: error bodies are never sized by the sender."""
    return value if len(value) <= limit else value[:limit] + "…"


@dataclass
class IssueTally:
    """The issues of an upload read in chunks: the first ones listed, in row order, the rest counted.

    Chunks come in row order and each lists its own first issues, so the first
    :data:`~functions.ingestion.tables.MAX_LISTED_ISSUES` of all chunks together are the ones the whole
    file would have listed.
    """

    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    errors_truncated: int = 0
    warnings_truncated: int = 0
    rows_received: int = 0
    rejected: int = 0

    def add(self, result: ValidationResult) -> None:
        """Count one chunk's rows and keep its issues while the lists have room."""
        self.rows_received += result.rows_received
        self.rejected += result.rejected
        self.errors_truncated += result.errors_truncated + _extend(self.errors, result.errors)
        self.warnings_truncated += result.warnings_truncated + _extend(self.warnings, result.warnings)


def _extend(listed: list[RowIssue], more: Sequence[RowIssue]) -> int:
    """Append what fits under the cap; returns how many did not."""
    room = max(sc.MAX_LISTED_ISSUES - len(listed), 0)
    listed.extend(more[:room])
    return max(len(more) - room, 0)


def merge_results(results: Iterable[ValidationResult]) -> ValidationResult:
    """The chunks of one upload as one result (the whole file's accepted rows in one table)."""
    tally = IssueTally()
    tables: list[pa.Table] = []
    for result in results:
        tally.add(result)
        tables.append(result.table)
    return ValidationResult(
        table=pa.concat_tables(tables) if len(tables) > 1 else tables[0],
        rows_received=tally.rows_received,
        rejected=tally.rejected,
        errors=tally.errors,
        warnings=tally.warnings,
        errors_truncated=tally.errors_truncated,
        warnings_truncated=tally.warnings_truncated,
    )
