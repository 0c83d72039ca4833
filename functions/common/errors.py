"""Every error the logic and data layers raise. ``functions.http.errors`` maps them to HTTP responses.

Each carries a message fit for the caller; none is classified by its text.
"""

from __future__ import annotations


class EmbedrecError(Exception):
    """Base of embedrec's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(EmbedrecError):
    """The thing asked for does not exist (or belongs to another tenant, which looks the same)."""


class ConflictError(EmbedrecError):
    """A uniqueness rule or a state rule forbids the change (duplicate slug, e-mail, running job…)."""


class InvalidInputError(EmbedrecError):
    """The request is well-formed but its content is unacceptable."""


class FileRejectedError(InvalidInputError):
    """An uploaded file cannot be read at all (no rows, missing columns, unreadable header)."""


class PayloadTooLargeError(EmbedrecError):
    """The body is above what API Gateway accepts; the caller should upload through a presigned URL."""


class AuthenticationError(EmbedrecError):
    """No credential, or one that is expired, forged, revoked or unknown."""


class PermissionDeniedError(EmbedrecError):
    """The credential is valid but may not do this (read-only key writing, member doing admin work)."""


class ServiceUnavailableError(EmbedrecError):
    """A dependency (S3, DynamoDB) failed or throttled; nothing was half-written, the caller may retry."""


class TooManyRequestsError(EmbedrecError):
    """A quota or the login lockout refuses the call for now; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class DatasetError(InvalidInputError):
    """The tenant's data cannot be trained on (nothing in the window, no catalogue…); retrying won't help."""


class TrainingFailedError(EmbedrecError):
    """The training job ended in failure; the message carries the trainer's reason."""
