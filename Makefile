# embedrec — the documented entry points. `make demo` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DATA ?= ../shared/data/gowalla
BUDGET_S ?= 300

LAYER_STAMP := layers/build/.stamp

.PHONY: help install demo run run-lambda bench-lambda test test-fast lint typecheck openapi fuzz screenshots layers synth cfn-lint test-infra bench-ingest bench-upload bench-serve bench-http bench-catalog bench-hostile bench-scale soak bench-train bench-gate clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
	$(BIN)/python -m pip install --quiet -e '.[dev,local,serving,train,cdk]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)  ## create .venv and install everything the tests and the demo need

demo: $(STAMP)  ## the walkthrough on the embedded local stack
	$(BIN)/python -m embedrec_local.demo

run: $(STAMP)  ## start the local stack on 127.0.0.1:8000 until interrupted
	$(BIN)/embedrec local

# The integration and e2e tiers run on the Lambda-faithful runtime (built bundles on Python 3.12; the
# first session synthesises the template); EMBEDREC_TEST_RUNTIME=inprocess runs them in-process.
test: $(STAMP) lint typecheck layers  ## install, lint, type-check and run every test tier
	bash tests/e2e/console/install_browser.sh $(BIN)/python  # Debian chromium + playwright (no browser download)
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=600

run-lambda: layers  ## the local stack with every function in emulated Lambda containers (Python 3.12, built bundles)
	$(BIN)/embedrec local --runtime lambda

test-fast: $(STAMP)  ## unit and functional tiers only
	$(BIN)/python -m pytest -q tests/unit tests/functional

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP)  ## mypy (strict) over the shipped code
	$(BIN)/mypy contract functions localstack/embedrec_local training_jobs cdk layers/build.py

$(LAYER_STAMP): $(STAMP) layers/build.py layers/base/requirements.txt layers/data/requirements.txt layers/serving/requirements.txt
	$(BIN)/python -m layers.build
	touch $(LAYER_STAMP)

layers: $(LAYER_STAMP)  ## Lambda layers + code asset (pip for manylinux x86_64 / CPython 3.12, no Docker)
	$(BIN)/python -m layers.build --layer code

synth: layers  ## cdk.out/Embedrec.template.json (offline; cdk-nag runs during synth)
	$(BIN)/python -m cdk.app

cfn-lint: synth  ## lint the synthesised template
	$(BIN)/cfn-lint cdk.out/Embedrec.template.json

test-infra: layers  ## CDK template assertions, cfn-lint, cdk-nag, bundle sizes
	$(BIN)/python -m pytest -q tests/infrastructure

openapi: $(STAMP)  ## refresh the committed OpenAPI documents (docs/openapi/; a test checks them)
	$(BIN)/python -m embedrec_local.openapi

bench-ingest: $(STAMP)  ## ingestion throughput: 100k-row CSV through validation to Parquet
	$(BIN)/python -m embedrec_local.bench_ingest --rows 100000

bench-upload: $(STAMP)  ## seconds to upload the 100k-row sample CSV over HTTP on the local stack
	$(BIN)/python -m embedrec_local.bench_upload --rows 100000

bench-hostile: $(STAMP)  ## hostile inputs over loopback HTTP: status, answer size and time of each (docs/reliability.md)
	$(BIN)/python -m embedrec_local.bench_hostile

ROWS ?= 5000000
USERS ?= 500000
ITEMS ?= 100000
bench-scale: $(STAMP)  ## one large tenant through every stage vs its AWS limit (ROWS=, USERS=, ITEMS=; docs/benchmarks.md)
	$(BIN)/python -m embedrec_local.bench_scale --rows $(ROWS) --users $(USERS) --items $(ITEMS)

bench-serve: $(STAMP)  ## serving latency p50/p99, ANN recall, cold load (5k and 1M items)
	$(BIN)/python -m embedrec_local.bench_serve --items 5000 1000000

bench-catalog: $(STAMP)  ## catalogue changes: view build/parse/rebase (5k, 100k items), warm-path cost, freshness
	$(BIN)/python -m embedrec_local.bench_catalog --items 5000 100000

bench-lambda: layers  ## serving on the Lambda-faithful runtime: cold start, warm p50/p99, RSS, 1/4/8 containers, cost
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m embedrec_local.bench_lambda

bench-http: $(STAMP)  ## warm recommendation requests over loopback HTTP with wrk (apt-get install wrk)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m embedrec_local.bench_http --seconds 15

screenshots: $(STAMP)  ## refresh the console screenshots in docs/screenshots (headless Chromium)
	bash tests/e2e/console/install_browser.sh $(BIN)/python
	EMBEDREC_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/console

fuzz: $(STAMP)  ## schemathesis on both apps' OpenAPI schemas: 2,000 generated requests per app
	EMBEDREC_FUZZ_REQUESTS=2000 $(BIN)/python -m pytest -q -p no:cacheprovider tests/functional/fuzz

soak: $(STAMP)  ## 5 minutes of mixed events and recommendations on loopback: error rate, p99, memory
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m embedrec_local.soak --seconds 300

bench-train: $(STAMP)  ## our candidates vs popularity, implicit ALS, EASE on DATA=... (train/test.txt) and the sample
	$(BIN)/python -m training_jobs.bench --data $(DATA)
	$(BIN)/python -m training_jobs.bench --sample

bench-gate: $(STAMP)  ## promotion gate on the sample: candidate vs active model vs popularity on one holdout
	$(BIN)/python -m embedrec_local.bench_gate

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache cdk.out sample_data layers/build
