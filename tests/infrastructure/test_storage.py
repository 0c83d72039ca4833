"""Tables and buckets: every table matches its spec in functions.common.resources; buckets are locked down."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions

from cdk import names
from functions.common import resources
from tests.infrastructure.helpers import Synth, render


def _table_for(synth: Synth, spec: resources.TableSpec) -> dict[str, Any]:
    return synth.resources[synth.logical_id(synth.stack.storage.table(spec))]


def _key_schema(partition: resources.Key, sort: resources.Key | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def test_there_is_one_table_per_spec(synth: Synth) -> None:
    assert len(synth.of_type("AWS::DynamoDB::Table")) == len(resources.TABLES)


@pytest.mark.parametrize("spec", resources.TABLES, ids=lambda spec: spec.logical_name)
def test_table_matches_its_spec(synth: Synth, spec: resources.TableSpec) -> None:
    # Given the table built from the spec
    properties = _table_for(synth, spec)["Properties"]
    # Then keys, attribute types, indexes and TTL are the spec's, on-demand with PITR
    assert properties["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key)
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        ({"AttributeName": key.name, "AttributeType": key.type} for key in spec.attribute_definitions()),
        key=lambda a: a["AttributeName"],
    )
    indexes = {index["IndexName"]: index for index in properties.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    for index in spec.indexes:
        assert indexes[index.name]["KeySchema"] == _key_schema(index.partition_key, index.sort_key)
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
    if spec.ttl_attribute:
        assert properties["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in properties
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True


def test_tables_and_buckets_are_retained_by_default(synth: Synth) -> None:
    for resource in [
        *synth.of_type("AWS::DynamoDB::Table").values(),
        *synth.of_type("AWS::S3::Bucket").values(),
    ]:
        assert resource["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("spec", resources.BUCKETS, ids=lambda spec: spec.logical_name)
def test_bucket_is_private_encrypted_logged_and_tls_only(synth: Synth, spec: resources.BucketSpec) -> None:
    bucket = synth.stack.storage.buckets[spec.logical_name]
    logical_id = synth.logical_id(bucket)
    properties = synth.resources[logical_id]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert "LoggingConfiguration" in properties
    policies = [
        policy
        for policy in synth.of_type("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    assert any(
        statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_artifacts_are_versioned_and_data_is_not(synth: Synth) -> None:
    storage = synth.stack.storage
    artifacts = synth.resources[synth.logical_id(storage.artifacts_bucket)]["Properties"]
    data = synth.resources[synth.logical_id(storage.data_bucket)]["Properties"]
    assert artifacts["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "VersioningConfiguration" not in data


def test_drop_folder_and_datasets_expire(synth: Synth) -> None:
    rules = synth.resources[synth.logical_id(synth.stack.storage.data_bucket)]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    assert by_prefix[resources.DROP_FOLDER_PREFIX]["ExpirationInDays"] == names.INCOMING_EXPIRY_DAYS
    assert by_prefix[names.DATASETS_PREFIX]["ExpirationInDays"] == names.DATASETS_EXPIRY_DAYS
    assert all(rule["Status"] == "Enabled" for rule in rules)


def test_drop_folder_notifies_the_queue_for_csv_only(synth: Synth) -> None:
    queue_id = synth.logical_id(synth.stack.ingestion.queue)
    synth.template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Ref": synth.logical_id(synth.stack.storage.data_bucket)},
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": assertions.Match.array_equals(
                                    [
                                        {"Name": "suffix", "Value": ".csv"},
                                        {"Name": "prefix", "Value": resources.DROP_FOLDER_PREFIX},
                                    ]
                                )
                            }
                        },
                        "QueueArn": {"Fn::GetAtt": [queue_id, "Arn"]},
                    }
                ]
            },
        },
    )


def test_queue_has_a_dead_letter_queue_and_partial_batch_failures(synth: Synth) -> None:
    ingestion = synth.stack.ingestion
    queue = synth.resources[synth.logical_id(ingestion.queue)]["Properties"]
    dlq_id = synth.logical_id(ingestion.dead_letter_queue)
    assert render(queue["RedrivePolicy"]["deadLetterTargetArn"]) == f"<{dlq_id}.Arn>"
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synth.logical_id(ingestion.queue), "Arn"]},
            "FunctionName": {"Ref": synth.logical_id(ingestion.function)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
