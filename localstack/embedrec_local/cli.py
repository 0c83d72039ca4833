"""The ``embedrec`` command: run the local stack and make sample data."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType


def _cmd_local(args: argparse.Namespace) -> int:
    from embedrec_local.stack import EmbeddedStack, StackConfig

    config = StackConfig(port=args.port, moto_port=args.moto_port)
    stack = EmbeddedStack(config)

    def _terminate(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    stack.start()
    names = config.names
    lines = [
        "embedrec local stack",
        f"  API (api + serving) : {stack.api_url}   (OpenAPI docs at {stack.api_url}/docs)",
        f"  AWS endpoint (moto) : {stack.moto_endpoint}   (AWS_ENDPOINT_URL, credentials testing/testing)",
        f"  data bucket         : s3://{names.prefix}-data   (drop folder: incoming/<tenant_id>/<kind>/)",
        f"  artifacts bucket    : s3://{names.prefix}-artifacts",
        f"  admin key           : {config.admin_key}",
        "  stop with Ctrl-C",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - the CLI's output
    try:
        stack.serve()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from embedrec_local.sample_data import generate_sample_data

    end = (
        datetime.fromisoformat(args.end).replace(tzinfo=UTC)
        if args.end
        else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    summary = generate_sample_data(
        Path(args.output),
        users=args.users,
        items=args.items,
        interactions=args.interactions,
        days=args.days,
        seed=args.seed,
        end=end,
    )
    print(summary)  # noqa: T201 - the CLI's output
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="embedrec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the embedded local stack on 127.0.0.1 until interrupted")
    local.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    local.add_argument("--moto-port", type=int, default=0, help="moto server port (default: a free port)")
    local.set_defaults(run=_cmd_local)

    generate = commands.add_parser("generate", help="write seeded sample shop data as CSV")
    generate.add_argument("--users", type=int, default=10_000)
    generate.add_argument("--items", type=int, default=5_000)
    generate.add_argument("--interactions", type=int, default=100_000)
    generate.add_argument("--days", type=int, default=90)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--end", help="end of the time window, YYYY-MM-DD (default: today, UTC)")
    generate.add_argument("--output", default="sample_data", help="output folder (default sample_data/)")
    generate.set_defaults(run=_cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``embedrec`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ValueError as exc:
        print(f"embedrec: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
