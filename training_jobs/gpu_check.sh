#!/usr/bin/env bash
# One prepared GPU check (run from the repo root on a CUDA machine; logs go to $OUT):
#   1. environment report, 2. the Gowalla benchmark (validation-selected hyper-parameters, then
#   BUDGET_S of training on train.txt, test.txt reported once), 3. the training unit tests on cuda.
# Optional wheels in .gpu_carry/*.whl (pydantic, faiss-cpu, ...) are installed to /tmp/site first.
# Overrides: DATA (default .gpu_carry/gowalla), BUDGET_S (300), TUNE_BUDGET_S (35), PY (python3).
set -u
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
PY="${PY:-python3}"
DATA="${DATA:-.gpu_carry/gowalla}"
BUDGET_S="${BUDGET_S:-300}"
TUNE_BUDGET_S="${TUNE_BUDGET_S:-35}"
TUNE="${TUNE:-normalize=1,temperature=0.1;normalize=1,temperature=0.2;normalize=0,temperature=1.0}"
export PYTHONUNBUFFERED=1

if ls .gpu_carry/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu_carry/*.whl >"$OUT/pip.log" 2>&1 && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$PY" - <<'EOF'
import importlib, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
for name in ("numpy", "pyarrow", "faiss", "onnx", "onnxruntime", "pydantic", "boto3", "moto", "pytest"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:  # report, do not fail
        print(name, "MISSING", type(exc).__name__)
EOF
} >"$OUT/env.log" 2>&1
cat "$OUT/env.log"

echo "== bench (budget ${BUDGET_S}s, tuning ${TUNE_BUDGET_S}s per candidate)"
timeout $((BUDGET_S + 3 * TUNE_BUDGET_S + 90)) "$PY" -m training_jobs.bench --mode lightgcn --data "$DATA" \
  --budget-s "$BUDGET_S" --tune "$TUNE" --tune-budget-s "$TUNE_BUDGET_S" --eval-every 10 \
  ${BENCH_EXTRA:-} 2>&1 | tee "$OUT/bench.log"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.log"

echo "== training unit tests"
timeout 60 "$PY" -m pytest -q --noconftest -p no:cacheprovider -o addopts="" tests/unit/training \
  2>&1 | tee "$OUT/tests.log" | tail -15
echo "tests exit: ${PIPESTATUS[0]}" | tee -a "$OUT/tests.log"
