#!/usr/bin/env bash
# mixed_bfloat16 against float32 on the conv workloads of ../shared/bench (the loop variant, the
# presets'), and float32 with oneDNN's bfloat16 math (TF_SET_ONEDNN_FPMATH_MODE=BF16: convolutions
# and matmuls in bfloat16, no model change), alternating one process per row over ROUNDS rounds
# so that all see the same load. Prints the ratios and appends them to benchmarks/precision.jsonl.
#   benchmarks/precision.sh            # ROUNDS=2, ~25 min on 2 cores
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)-precision}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
export MAML_BENCH_DIR=${MAML_BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)} TF_CPP_MIN_LOG_LEVEL=2
{ grep -m1 'model name' /proc/cpuinfo; echo "start: $(uptime)"; } > "$OUT/env.txt"

row() {  # row NAME ARGS...
  local name=$1; shift
  if timeout 900 "$PY" "$HERE/bench_maml.py" "$@" --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1; then
    grep '^\[' "$OUT/$name.log"; else echo "FAILED or timed out: $name (see $OUT/$name.log)"; fi
}
for r in $(seq 1 "$ROUNDS"); do
  for w in "omniglot 2 SO" "omniglot 1 FO" "mini 2 SO"; do
    set -- $w
    row "maml-tf_$1_loop-$3.r$r"      --workload "$1" --style loop --order "$2" --iters 8 --warmup 1
    row "maml-tf_$1_loop-bf16-$3.r$r" --workload "$1" --style loop --order "$2" --iters 8 --warmup 1 \
        --precision mixed_bfloat16
    TF_SET_ONEDNN_FPMATH_MODE=BF16 row "maml-tf_$1_loop-onednnbf16-$3.r$r" --workload "$1" --style loop \
        --order "$2" --iters 8 --warmup 1
  done
done
echo "end: $(uptime)" >> "$OUT/env.txt"
"$PY" "$HERE/table.py" "$OUT" --precision-log "$HERE/precision.jsonl"
