"""Training: AWS Batch on GPU instances running the ``training_jobs`` container.

Compute scales from zero: a spot environment (g5/g6, price-capacity optimised) first, an on-demand one
as fallback. Instances sit in public subnets without inbound rules (no NAT gateway to pay for) and reach
ECR, S3 and DynamoDB over HTTPS. The job role reads ``datasets/`` and reads, writes and deletes under
``models/`` only.

The image is a ``DockerImageAsset`` of ``training_jobs/Dockerfile`` (build context: the repository root),
built and pushed by ``cdk deploy`` (needs Docker there, never at synth). Where the image is built
elsewhere, set context ``embedrec:trainingImageRepository`` (+ ``embedrec:trainingImageTag``) to use
an existing ECR repository instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Aws, Duration, Size, Validations
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk import names
from cdk.constructs.grants import grant_objects
from cdk.constructs.storage import Storage
from functions.common import resources

_INSTANCE_CLASSES = {"g5": ec2.InstanceClass.G5, "g6": ec2.InstanceClass.G6}


@dataclass(frozen=True)
class TrainingImageSource:
    """Where the training image comes from: an asset built at deploy, or an existing ECR image."""

    repository_name: str | None = None
    tag: str = "latest"

    @property
    def from_asset(self) -> bool:
        """Whether ``cdk deploy`` builds the image from ``training_jobs/Dockerfile``."""
        return self.repository_name is None


def training_image(scope: Construct, source: TrainingImageSource) -> ecs.ContainerImage:
    """The container image (no Docker needed at synth: an asset is only staged, built at deploy)."""
    if source.repository_name is not None:
        repository = ecr.Repository.from_repository_name(scope, "TrainingRepository", source.repository_name)
        return ecs.ContainerImage.from_ecr_repository(repository, source.tag)
    asset = ecr_assets.DockerImageAsset(
        scope,
        "TrainingImage",
        directory=str(names.ROOT),
        file=names.TRAINING_DOCKERFILE,
        exclude=list(names.TRAINING_IMAGE_CONTEXT_EXCLUDES),
        platform=ecr_assets.Platform.LINUX_AMD64,
    )
    return ecs.ContainerImage.from_docker_image_asset(asset)


class Training(Construct):
    """GPU compute environments, the job queue and the training job definition."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        image_source: TrainingImageSource,
        max_vcpus: int = names.TRAINING_DEFAULT_MAX_VCPUS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            flow_logs={"reject": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.REJECT)},
        )
        security_group = ec2.SecurityGroup(
            self, "InstancesSecurityGroup", vpc=self.vpc, description="Batch GPU instances: egress only"
        )
        instance_classes = [_INSTANCE_CLASSES[name] for name in names.TRAINING_INSTANCE_CLASSES]
        gpu_image = batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)
        common: dict[str, Any] = {
            "vpc": self.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            "security_groups": [security_group],
            "instance_classes": instance_classes,
            "use_optimal_instance_classes": False,
            "images": [gpu_image],
            "minv_cpus": 0,
            "maxv_cpus": max_vcpus,
        }
        self.spot_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "SpotGpu",
            spot=True,
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
            **common,
        )
        self.on_demand_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "OnDemandGpu",
            allocation_strategy=batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
            **common,
        )
        self.job_queue = batch.JobQueue(
            self,
            "GpuQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.spot_environment, order=1),
                batch.OrderedComputeEnvironment(compute_environment=self.on_demand_environment, order=2),
            ],
        )

        self.job_role = iam.Role(
            self,
            "JobRole",
            description="embedrec training container: read datasets/ (checkpoints there), publish models/, "
            "update its job record",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        grant_objects(self.job_role, storage.data_bucket, ("read",), (names.DATASETS_PREFIX,))
        # Checkpoints a retried attempt resumes from (training_jobs/checkpoints.py): written beside the
        # snapshot, listed and read through the datasets/ grant above; they expire with the snapshot.
        grant_objects(self.job_role, storage.data_bucket, ("write",), (names.CHECKPOINTS_PREFIX,))
        # publish_artifacts HEADs the version's manifest before writing (s3:GetObject), writes the files and
        # deletes what it wrote when a publish fails half-way: read, write and delete under models/.
        grant_objects(
            self.job_role, storage.artifacts_bucket, ("read", "write", "delete"), (names.MODELS_PREFIX,)
        )
        # A HEAD of a missing key answers 404 only to a caller with s3:ListBucket on the bucket, else 403
        # (AWS: HeadObject); the s3:prefix condition of the grant above does not apply to a HEAD, so the
        # first publish of every version needs ListBucket without it. Key names only, no object data.
        self.job_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[storage.artifacts_bucket.bucket_arn])
        )
        jobs_table = storage.table(resources.TRAINING_JOBS)
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[jobs_table.table_arn]
            )
        )

        self.container = batch.EcsEc2ContainerDefinition(
            self,
            "TrainingContainer",
            image=training_image(self, image_source),
            cpu=names.TRAINING_VCPUS,
            memory=Size.mebibytes(names.TRAINING_MEMORY_MIB),
            gpu=names.TRAINING_GPUS,
            command=list(names.TRAINING_COMMAND),
            job_role=self.job_role,
            environment={
                resources.TRAINING_JOBS.env_var: jobs_table.table_name,
                resources.DATA_BUCKET.env_var: storage.data_bucket.bucket_name,
                resources.ARTIFACTS_BUCKET.env_var: storage.artifacts_bucket.bucket_name,
                "AWS_DEFAULT_REGION": Aws.REGION,
            },
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "TrainingJob",
            container=self.container,
            timeout=Duration.hours(names.TRAINING_TIMEOUT_HOURS),
            retry_attempts=3,
            # Spot reclaims and host failures ("Host EC2*") are retried; a crash of the trainer is not.
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
            propagate_tags=True,
        )
        self._acknowledge()

    def _acknowledge(self) -> None:
        execution_role = self.container.execution_role
        Validations.of(execution_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="The execution role pulls the image: ecr:GetAuthorizationToken supports no "
                "resource-level permissions (repository pulls are scoped to the repository).",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                "log-group:/aws/batch/job:*]",
                reason="AWS Batch's awslogs driver writes job streams into its fixed /aws/batch/job group; "
                "the stream names are per job.",
            ),
        )
        for environment in (self.spot_environment, self.on_demand_environment):
            Validations.of(environment).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonEC2ContainerServiceforEC2Role]",
                    reason="The ECS container-instance policy AWS Batch documents for its instance role; "
                    "it grants the agent's ECS/ECR/logs calls only.",
                ),
            )
