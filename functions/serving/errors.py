"""Errors of the serving function's model loading.

They never reach a caller: the model store catches them, keeps the previous version (or popular items)
live, logs and emits ``ModelLoadFailures``. Request-level errors are the shared ones of
``functions.common.errors`` (mapped to HTTP by ``functions.http.errors``).
"""

from __future__ import annotations

from functions.common.errors import EmbedrecError


class ArtifactError(EmbedrecError):
    """A model version's artifacts cannot be used."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short metric/log label: "missing", "integrity", "unreadable"


class ArtifactMissingError(ArtifactError):
    """A file named by the pointer or the manifest is not in S3."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="missing")


class ArtifactIntegrityError(ArtifactError):
    """A file's sha256 or size differs from the manifest, or the manifest lacks it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="integrity")


class ArtifactUnreadableError(ArtifactError):
    """A file passed its hash check but cannot be parsed or does not fit the contract."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unreadable")
