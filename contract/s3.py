"""How S3 answers about objects that do not exist (a ``ClientError``'s ``Error.Code``)."""

from __future__ import annotations

from typing import Final

#: ``GetObject`` says ``NoSuchKey``; ``HeadObject`` has no body and says ``404`` (``NotFound`` in moto).
NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NotFound", "404"})
#: The bucket itself does not exist.
NO_SUCH_BUCKET: Final = "NoSuchBucket"
