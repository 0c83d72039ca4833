"""Create the platform's tables, buckets and queue on an AWS endpoint (moto) from the shared specs.

The same ``functions.common.resources`` specs drive the CDK constructs, so local and cloud match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.common import resources

DROP_QUEUE = "embedrec-drop-folder"


@dataclass(frozen=True)
class LocalNames:
    """Physical names on the local stack."""

    prefix: str = "embedrec"

    def table(self, spec: resources.TableSpec) -> str:
        """The table's physical name."""
        return f"{self.prefix}-{spec.logical_name}"

    def bucket(self, spec: resources.BucketSpec) -> str:
        """The bucket's physical name."""
        return f"{self.prefix}-{spec.logical_name}"

    def environment(self) -> dict[str, str]:
        """The env vars that tell functions where their resources are (as the CDK app sets them)."""
        env = {spec.env_var: self.table(spec) for spec in resources.TABLES}
        env.update({spec.env_var: self.bucket(spec) for spec in resources.BUCKETS})
        return env


def table_definition(spec: resources.TableSpec, name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for a spec (on-demand billing, as in the CDK app)."""
    key_schema = [{"AttributeName": spec.partition_key.name, "KeyType": "HASH"}]
    if spec.sort_key is not None:
        key_schema.append({"AttributeName": spec.sort_key.name, "KeyType": "RANGE"})
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": key.name, "AttributeType": key.type} for key in spec.attribute_definitions()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
                + (
                    [{"AttributeName": index.sort_key.name, "KeyType": "RANGE"}]
                    if index.sort_key is not None
                    else []
                ),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    return definition


def provision(names: LocalNames, region: str) -> dict[str, str]:
    """Create every resource (idempotent); returns the drop-folder queue URL under ``drop_queue_url``."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    existing = set(dynamodb.list_tables()["TableNames"])
    for spec in resources.TABLES:
        name = names.table(spec)
        if name in existing:
            continue
        dynamodb.create_table(**table_definition(spec, name))
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
    s3 = boto3.client("s3", region_name=region)
    for bucket in resources.BUCKETS:
        try:
            s3.create_bucket(Bucket=names.bucket(bucket))
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    sqs = boto3.client("sqs", region_name=region)
    queue_url = sqs.create_queue(QueueName=DROP_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket(resources.DATA_BUCKET),
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": resources.DROP_FOLDER_PREFIX},
                                {"Name": "suffix", "Value": ".csv"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    return {"drop_queue_url": queue_url, "drop_queue_arn": queue_arn}
