#!/usr/bin/env bash
# The GPU paths' costs, for the day a GPU is there: under 8 minutes, one JSON object on the
# last line (benchmarks/gpu_check.py says what each figure is). On a machine where torch sees
# no CUDA device it runs nothing heavy and says what it skipped and why.
#   bash benchmarks/gpu_check.sh [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
