"""Least-privilege grants with explicit actions, scoped by S3 prefix, and their cdk-nag evidence.

Object ARNs under a prefix (``bucket/models/*``) and a table's ``/index/*`` are wildcards to cdk-nag
(AwsSolutions-IAM5); each grant made here acknowledges exactly the finding it creates, on the grantee,
with the reason, so no wildcard elsewhere is hidden by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from functions.common import resources

ObjectAccess = Literal["read", "write", "delete"]

_OBJECT_ACTIONS: dict[ObjectAccess, tuple[str, ...]] = {
    "read": ("s3:GetObject",),
    "write": ("s3:PutObject", "s3:AbortMultipartUpload"),
    "delete": ("s3:DeleteObject",),
}


class Grantee(iam.IGrantable, IConstruct, Protocol):
    """A function or role: something that can be granted to and acknowledged on."""


def nag_arn(resource: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag renders ``Fn::GetAtt [<resource>, <attribute>]`` in a finding id."""
    cfn = resource.node.default_child
    assert isinstance(cfn, CfnResource)
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(cfn))}.{attribute}>"


def nag_arn_pattern(service: str, resource: str) -> str:
    """How cdk-nag renders an ARN built by ``Stack.format_arn`` (``resource`` already rendered)."""
    return f"arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"


def acknowledge_wildcard(grantee: IConstruct, resource_pattern: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for one wildcard resource on ``grantee``."""
    Validations.of(grantee).acknowledge(
        Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource_pattern}]", reason=reason)
    )


def grant_objects(
    grantee: Grantee,
    bucket: s3.IBucket,
    access: Iterable[ObjectAccess],
    prefixes: Sequence[str] = ("",),
) -> None:
    """Object access on ``bucket`` under ``prefixes`` ("" is the whole bucket); read also lists them."""
    access = tuple(access)
    actions = sorted({action for kind in access for action in _OBJECT_ACTIONS[kind]})
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=actions,
            resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
        )
    )
    if "read" in access:
        conditions = (
            None if "" in prefixes else {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}}
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions=conditions
            )
        )
    for prefix in prefixes:
        where = f"the '{prefix}' prefix" if prefix else "its own bucket (it owns that bucket's whole layout)"
        acknowledge_wildcard(
            grantee,
            f"{nag_arn(bucket)}/{prefix}*",
            f"Object-level access ({', '.join(actions)}) is scoped to {where}; object keys are "
            "per tenant and per upload, so they cannot be listed in a policy.",
        )


def grant_table(grantee: Grantee, table: dynamodb.Table, spec: resources.TableSpec, *, write: bool) -> None:
    """Item read (and write) on ``table``, and on its indexes when the spec declares some."""
    if write:
        table.grant_read_write_data(grantee)
    else:
        table.grant_read_data(grantee)
    if spec.indexes:
        acknowledge_wildcard(
            grantee,
            f"{nag_arn(table)}/index/*",
            f"Queries on the GSIs of the {spec.logical_name} table "
            f"({', '.join(index.name for index in spec.indexes)}) need the table's index ARNs; the "
            "wildcard covers only this table's indexes.",
        )
