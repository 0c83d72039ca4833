#!/usr/bin/env bash
# Deploy the CDK app into a running LocalStack (see docker-compose.yml beside this file).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "LocalStack needs a running Docker engine"; exit 1; }
make layers
npm install --no-save --prefix .localstack-tools aws-cdk aws-cdk-local >/dev/null
export PATH="$PWD/.localstack-tools/node_modules/.bin:$PATH"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
cdklocal bootstrap --app ".venv/bin/python -m cdk.app"
cdklocal deploy --app ".venv/bin/python -m cdk.app" --require-approval never --outputs-file cdk.out/localstack-outputs.json
echo "Outputs (API URL, secret ARNs) are in cdk.out/localstack-outputs.json."
echo "Read the admin key with: awslocal secretsmanager get-secret-value --secret-id <AdminKeySecretArn>"
