"""The ``embedrec`` command: run the local stack, make sample data, print metrics."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType


def _cmd_local(args: argparse.Namespace) -> int:
    from embedrec_local.stack import EmbeddedStack, StackConfig

    config = StackConfig(port=args.port, moto_port=args.moto_port, runtime=args.runtime)
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
        f"  admin key           : {_admin_key_line(config.admin_key, sys.stdout.isatty())}",
        f"  functions run       : {_runtime_line(config.runtime)}",
        "  stop with Ctrl-C",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - the CLI's output
    try:
        stack.serve(workers=args.workers)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _runtime_line(runtime: str) -> str:
    if runtime == "lambda":
        return "in emulated Lambda containers (built bundles, Python 3.12; make layers synth)"
    return "in this process (--runtime lambda for Lambda-faithful containers)"


def _admin_key_line(admin_key: str, to_terminal: bool) -> str:
    """What the banner says about the platform admin key: the key itself only on a terminal.

    A banner that goes to a log (the demo, CI, ``> stack.log``) must not carry the key: a key the
    caller chose (``EMBEDREC_ADMIN_KEY``) is known to it already; a generated one goes to a file only
    the current user can read.
    """
    if os.environ.get("EMBEDREC_ADMIN_KEY") == admin_key:
        return "from EMBEDREC_ADMIN_KEY (not printed)"
    if to_terminal:
        return admin_key
    handle, path = tempfile.mkstemp(prefix="embedrec-admin-key-", text=True)  # created with mode 0600
    with os.fdopen(handle, "w") as sink:
        sink.write(admin_key + "\n")
    return f"written to {path} (readable by you only; not printed to a log)"


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


def _cmd_metrics(args: argparse.Namespace) -> int:
    """Print the namespace's metrics from CloudWatch (the local stack's moto, or AWS_ENDPOINT_URL)."""
    import boto3

    from embedrec_local.emf import emf_metric_data

    if args.minutes < 1:
        raise ValueError("--minutes must be at least 1")
    cloudwatch = boto3.client("cloudwatch", endpoint_url=args.endpoint)
    if args.emf:
        # A running `embedrec local` forwards its functions' EMF by itself (embedrec_local.emf); this loads
        # a log captured elsewhere (e.g. the demo's stack log) into CloudWatch as well.
        with open(args.emf, encoding="utf-8", errors="replace") as log:
            forwarded = 0
            for namespace, datum in emf_metric_data(log):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=[datum])  # type: ignore[list-item]
                forwarded += 1
        print(f"forwarded {forwarded} EMF metric(s) from {args.emf}")  # noqa: T201 - the CLI's output
    # One period over the window; it ends a minute ahead so that values stamped "now" are inside it.
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(minutes=args.minutes + 1)
    rows: list[str] = []
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=args.namespace):
        for metric in page.get("Metrics", []):
            points = cloudwatch.get_metric_statistics(
                Namespace=args.namespace,
                MetricName=metric["MetricName"],
                Dimensions=metric.get("Dimensions", []),
                StartTime=start,
                EndTime=end,
                Period=(args.minutes + 1) * 60,
                Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
            )["Datapoints"]
            if not points:
                continue
            count = sum(p.get("SampleCount", 0) for p in points)
            total = sum(p.get("Sum", 0) for p in points)
            dims = ",".join(f"{d['Name']}={d['Value']}" for d in metric.get("Dimensions", []))
            rows.append(
                f"{metric['MetricName']:<28} {dims:<34} {count:>8.0f} {total:>14.2f} "
                f"{total / count if count else 0:>12.2f} {min(p.get('Minimum', 0) for p in points):>12.2f} "
                f"{max(p.get('Maximum', 0) for p in points):>12.2f}"
            )
    if not rows:
        print(f"no metrics in namespace '{args.namespace}' in the last {args.minutes} minutes")  # noqa: T201
        return 0
    header = (
        f"{'metric':<28} {'dimensions':<34} {'samples':>8} {'sum':>14} {'avg':>12} {'min':>12} {'max':>12}"
    )
    print("\n".join([header, *sorted(rows)]))  # noqa: T201 - the CLI's output
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="embedrec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the embedded local stack on 127.0.0.1 until interrupted")
    local.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    local.add_argument("--moto-port", type=int, default=0, help="moto server port (default: a free port)")
    local.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    local.add_argument(
        "--runtime",
        choices=("inprocess", "lambda"),
        default=os.environ.get("EMBEDREC_LOCAL_RUNTIME", "inprocess"),
        help="inprocess: the apps in this process (default); lambda: every function in emulated Lambda "
        "containers from its built bundle (Python 3.12, memory/time/payload limits, frozen between calls)",
    )
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

    metrics = commands.add_parser("metrics", help="print CloudWatch metrics of the local stack (moto)")
    metrics.add_argument("--namespace", default="embedrec", help="metric namespace (default embedrec)")
    metrics.add_argument("--minutes", type=int, default=60, help="the last N minutes (default 60)")
    metrics.add_argument(
        "--endpoint",
        default=None,
        help="CloudWatch endpoint (default: AWS_ENDPOINT_URL, as the stack printed)",
    )
    metrics.add_argument("--emf", help="first forward the EMF documents found in this log file")
    metrics.set_defaults(run=_cmd_metrics)
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
