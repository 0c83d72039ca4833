"""Create the platform's tables, buckets and queue on an AWS endpoint (moto) from the shared specs.

The same ``functions.common.resources`` specs drive the CDK constructs, so local and cloud match.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.common import deployment, resources

DROP_QUEUE = "embedrec-drop-folder"
ACCOUNT = "123456789012"  # moto's account


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

    def queue(self, spec: resources.QueueSpec) -> str:
        """The queue's physical name (its dead-letter queue adds ``-dlq``)."""
        return f"{self.prefix}-{spec.logical_name}"

    def queue_url(self, spec: resources.QueueSpec, region: str = "us-east-1") -> str:
        """The queue's URL as moto answers it (known before the queue exists, like the env vars)."""
        return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{self.queue(spec)}"

    def queue_arn(self, spec: resources.QueueSpec, region: str = "us-east-1") -> str:
        """The queue's ARN."""
        return f"arn:aws:sqs:{region}:{ACCOUNT}:{self.queue(spec)}"

    def environment(self, region: str = "us-east-1") -> dict[str, str]:
        """The env vars that tell functions where their resources are (as the CDK app sets them)."""
        env = {spec.env_var: self.table(spec) for spec in resources.TABLES}
        env.update({spec.env_var: self.bucket(spec) for spec in resources.BUCKETS})
        env.update({spec.env_var: self.queue_url(spec, region) for spec in resources.QUEUES})
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


def create_queue(sqs: Any, name: str, spec: resources.QueueSpec) -> str:
    """A queue and its dead-letter queue from a spec (as ``cdk/constructs/storage.py`` builds them)."""
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={"MessageRetentionPeriod": str(spec.dlq_retention_days * 86_400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_s),
            "MessageRetentionPeriod": str(spec.retention_days * 86_400),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receives}
            ),
        },
    )["QueueUrl"]
    return url


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
    for queue in resources.QUEUES:
        create_queue(sqs, names.queue(queue), queue)
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


TRAINING_QUEUE = "embedrec-training"
TRAINING_DEFINITION = "embedrec-training"
STATE_MACHINE = "embedrec-training-workflow"
SCHEDULE_GROUP = "embedrec-training"
LOCAL_ROLE = "embedrec-local"
TRAINING_COMMAND = ["python", "-m", "training_jobs.train"]


def state_machine_arn(region: str) -> str:
    """The local state machine's ARN (known before it exists, so functions can be configured first)."""
    return f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"


def compute_environment(names: LocalNames, region: str) -> dict[str, str]:
    """The env vars naming the workflow's compute, as the CDK app sets them."""
    return {
        "EMBEDREC_STATE_MACHINE_ARN": state_machine_arn(region),
        "EMBEDREC_TRAINING_JOB_QUEUE": TRAINING_QUEUE,
        "EMBEDREC_TRAINING_JOB_DEFINITION": TRAINING_DEFINITION,
        "EMBEDREC_TRAINING_JOBS_TABLE": names.table(resources.TRAINING_JOBS),
        "EMBEDREC_SCHEDULE_GROUP": SCHEDULE_GROUP,
        "EMBEDREC_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{LOCAL_ROLE}",
    }


def function_arn(region: str, name: str) -> str:
    """The ARN of a locally registered function."""
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


def render_workflow(region: str) -> str:
    """The training workflow's ASL with each ``${...}`` placeholder replaced by a local function ARN."""
    definition = Path(deployment.TRAINING_WORKFLOW_ASL)
    if not definition.is_absolute():
        definition = Path(__file__).resolve().parents[2] / definition
    text = definition.read_text()
    for spec in deployment.PIPELINE_STEPS:
        assert spec.asl_placeholder is not None
        text = text.replace("${" + spec.asl_placeholder + "}", function_arn(region, spec.name))
    return text


def provision_compute(region: str, names: LocalNames | None = None) -> None:
    """Register the Lambda functions (real handler strings), Batch queue/definition and the state machine."""
    names = names or LocalNames()
    iam = boto3.client("iam", region_name=region)
    try:
        role_arn = iam.create_role(
            RoleName=LOCAL_ROLE,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        role_arn = iam.get_role(RoleName=LOCAL_ROLE)["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=region)
    existing = {fn["FunctionName"] for fn in lam.list_functions()["Functions"]}
    for spec in deployment.FUNCTIONS:
        if spec.name in existing:
            continue
        lam.create_function(
            FunctionName=spec.name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": _empty_zip()},
            Timeout=spec.timeout_s,
            MemorySize=spec.memory_mb,
        )
    batch = boto3.client("batch", region_name=region)
    if not batch.describe_job_queues(jobQueues=[TRAINING_QUEUE])["jobQueues"]:
        env_arn = batch.create_compute_environment(
            computeEnvironmentName="embedrec-local-cpu",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role_arn,
        )["computeEnvironmentArn"]
        batch.create_job_queue(
            jobQueueName=TRAINING_QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env_arn}],
        )
        environment = {
            resources.ARTIFACTS_BUCKET.env_var: names.bucket(resources.ARTIFACTS_BUCKET),
            resources.DATA_BUCKET.env_var: names.bucket(resources.DATA_BUCKET),
            resources.TRAINING_JOBS.env_var: names.table(resources.TRAINING_JOBS),
        }
        batch.register_job_definition(
            jobDefinitionName=TRAINING_DEFINITION,
            type="container",
            containerProperties={
                "image": "embedrec-training:local",
                "command": list(TRAINING_COMMAND),
                "environment": [{"name": name, "value": value} for name, value in environment.items()],
                "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}],
            },
        )
    scheduler = boto3.client("scheduler", region_name=region)
    if not any(g["Name"] == SCHEDULE_GROUP for g in scheduler.list_schedule_groups()["ScheduleGroups"]):
        scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    sfn = boto3.client("stepfunctions", region_name=region)
    if not any(m["name"] == STATE_MACHINE for m in sfn.list_state_machines()["stateMachines"]):
        sfn.create_state_machine(name=STATE_MACHINE, definition=render_workflow(region), roleArn=role_arn)


def _empty_zip() -> bytes:
    """A deployment package placeholder: the local runner imports the code from this checkout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code is run in-process from the embedrec checkout")
    return buffer.getvalue()
