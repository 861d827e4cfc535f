#!/usr/bin/env bash
# Speed and memory of MAML meta-training: maml-tf beside the JAX and PyTorch references
# of ../shared/bench, same workloads, same machine, one run, one process per row.
#   benchmarks/run.sh            quick tier (~20 min on an idle 2-core machine)
# Writes benchmarks/results/<timestamp>/ (JSON + logs + grads) and rewrites the generated
# table in benchmarks/README.md. Run nothing else meanwhile ("other cores" column).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BENCH=${MAML_BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)}
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/grads"
export MAML_BENCH_DIR=$BENCH TF_CPP_MIN_LOG_LEVEL=2

"$BENCH/setup.sh" >/dev/null                     # reference venvs (idempotent)
OUT=$OUT "$BENCH/run_all.sh" quick || echo "some reference runs failed (see $OUT)"

ours() {  # ours NAME TIMEOUT ARGS...   (GRADS=DIR: where its first meta-gradient goes)
  local name=$1 to=$2; shift 2
  mkdir -p "${GRADS:-$OUT/grads}"
  if timeout "$to" "$PY" "$HERE/bench_maml.py" "$@" --out "$OUT/$name.json" \
       --dump "${GRADS:-$OUT/grads}/$name.npz" >"$OUT/$name.log" 2>&1; then grep '^\[' "$OUT/$name.log"
  else echo "FAILED or timed out: $name (see $OUT/$name.log)"; fi
}
ours maml-tf_sine_vectorized-xla-SO 600 --workload sine --style vectorized --iters 3000 --fit 50
ours maml-tf_sine_vectorized-xla-fncall-SO 600 --workload sine --style vectorized --iters 3000 --call function
ours maml-tf_sine_vectorized-SO 600 --workload sine --style vectorized --xla off --iters 3000
ours maml-tf_sine_loop-SO       600 --workload sine --style loop --iters 1000
ours maml-tf_sine_unrolled-SO   600 --workload sine --style unrolled --iters 1000
for o in 2 1; do
  v=$([ $o = 2 ] && echo SO || echo FO)
  ours maml-tf_omniglot_loop-$v     900 --workload omniglot --style loop --order $o --iters 8 --warmup 1
  ours maml-tf_omniglot_unrolled-$v 900 --workload omniglot --style unrolled --order $o --iters 8 --warmup 1
  ours maml-tf_mini_loop-$v         900 --workload mini --style loop --order $o --iters 8 --warmup 1
done
ours maml-tf_mini_unrolled-SO 900 --workload mini --style unrolled --order 2 --iters 8 --warmup 1
# The rows above run the library default (bias-free convs, fused batch norm with the closed-form
# second derivative; README "Conv workloads"). Beside it, its own lines under the table: the
# default before 2026-12-06 (conv biases, composite batch norm) and TensorFlow's second derivative.
ours maml-tf_omniglot_loop-convbias-SO 900 --workload omniglot --style loop --order 2 --iters 8 --warmup 1 --conv-bias
ours maml-tf_mini_loop-convbias-SO     900 --workload mini --style loop --order 2 --iters 8 --warmup 1 --conv-bias
ours maml-tf_omniglot_loop-bnfused-SO  900 --workload omniglot --style loop --order 2 --iters 8 --warmup 1 --batch-norm-op fused
# mixed_bfloat16 (float32 weights, bfloat16 layers): faster only where the CPU has native
# bfloat16 (env.txt / each JSON's bfloat16_native). Its meta-gradients depart from float32's by
# design, so they are kept apart from compare.py's float32 agreement check (grads_bf16/).
GRADS=$OUT/grads_bf16 ours maml-tf_omniglot_loop-bf16-SO 900 --workload omniglot --style loop --order 2 --iters 8 --warmup 1 --precision mixed_bfloat16
GRADS=$OUT/grads_bf16 ours maml-tf_omniglot_loop-bf16-FO 900 --workload omniglot --style loop --order 1 --iters 8 --warmup 1 --precision mixed_bfloat16
GRADS=$OUT/grads_bf16 ours maml-tf_mini_loop-bf16-SO     900 --workload mini --style loop --order 2 --iters 8 --warmup 1 --precision mixed_bfloat16

{
  echo "== all runs =="; python3 "$BENCH/table.py" "$OUT"
  echo; echo "== first meta-gradient agreement =="; python3 "$BENCH/compare.py" "$OUT/grads"
} > "$OUT/table.txt" 2>&1
cat "$OUT/table.txt"
"$PY" "$HERE/table.py" "$OUT" --readme "$HERE/README.md"
