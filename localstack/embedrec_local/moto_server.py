"""The local stack's moto server: moto's own server with the local compute substrates installed.

``python -m embedrec_local.moto_server -H 127.0.0.1 -p PORT`` (the stack starts it with the functions'
environment, so in-process Lambda handlers and training subprocesses reach this same server).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from moto import server

from embedrec_local import moto_patches
from embedrec_local.emf import forward_stdout_metrics


def _stop(_signum: int, _frame: FrameType | None) -> None:
    moto_patches.close_fleet()
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """Install the patches and the metrics forwarding, then run moto's server."""
    moto_patches.install()
    # SIGTERM (the stack stopping): the Lambda containers this process started go with it.
    signal.signal(signal.SIGTERM, _stop)
    forward_stdout_metrics()  # pipeline steps run here and emit EMF (e.g. ModelNDCG10, TrainingFailures)
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
