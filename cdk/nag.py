"""cdk-nag (AwsSolutions) on the app, and the stack-wide acknowledgments with their reasons.

Findings specific to one construct are acknowledged next to it (in its construct module); only
those that hold for every function or role of the stack are listed here.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks

STACK_ACKNOWLEDGMENTS: tuple[tuple[str, str], ...] = (
    (
        "AwsSolutions-L1",
        "Functions run python3.12 on purpose: the layers are built for the CPython 3.12 ABI "
        "(layers/build.py); moving runtime means rebuilding and re-measuring the layers.",
    ),
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "The AWS-managed basic execution policy only lets a function write its own CloudWatch logs.",
    ),
)


def apply_checks(app: App, stack: Stack) -> None:
    """Run AwsSolutions on every construct at synth; acknowledge the stack-wide findings."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    for rule_id, reason in STACK_ACKNOWLEDGMENTS:
        Validations.of(stack).acknowledge(Acknowledgment(id=rule_id, reason=reason))
