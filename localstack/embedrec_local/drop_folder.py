"""The local event-source mapping: deliver the drop-folder queue's S3 notifications to ``ingest``.

In AWS an SQS event source mapping does this; locally a thread long-polls the same queue on moto
(``embedrec_local.event_sources``).
"""

from __future__ import annotations

from embedrec_local.event_sources import SqsEventSource
from embedrec_local.runner import Invoker

_BATCH = 10


class DropFolderPoller(SqsEventSource):
    """Long-polls the drop-folder queue and invokes the ingest function with SQS events until stopped."""

    def __init__(self, runner: Invoker, queue_url: str, queue_arn: str, region: str) -> None:
        super().__init__(runner, "ingest", queue_url, queue_arn, region, batch_size=_BATCH)
