"""JAX's side of ``profile_sine.py --hlo``: run with the references' JAX venv.

Writes JAX's optimized HLO of the sine meta-step (``maml_jax.make_fns``, vmap, second order,
Adam) to ``DIR/jax_optimized_hlo.txt``, compiles our step's HLO (``DIR/ours_step.hlo.pb``,
written by ``profile_sine.py``) with JAX's XLA, writes that optimized module too, and times
both as ``LoadedExecutable.execute`` calls in alternating rounds: the same runtime and XLA
version for both modules, so the difference is the computation TensorFlow hands to XLA.

    ~/.cache/maml-bench-venvs/jax/bin/python benchmarks/sine_hlo_jax.py DIR [--rounds 4 --calls 500]
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np

BENCH_DIR = os.environ.get("MAML_BENCH_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(BENCH_DIR))

import common as C  # noqa: E402
import jax  # noqa: E402
import maml_jax as MJ  # noqa: E402
from jax._src.lib import _jax, xla_client  # noqa: E402

DTYPES = {"f32": np.float32, "s32": np.int32, "s64": np.int64}


def load(client, mlir):
    return client.compile_and_load(mlir, jax.devices()[:1], xla_client.CompileOptions())


def arguments(executable, rng):
    """Random host arrays shaped as the module's parameters (the timing does not depend on values)."""
    text = executable.hlo_modules()[0].to_string()
    signature = re.search(r"\nENTRY [^(]*\((.*?)\) ->", text).group(1)
    out = []
    for dtype, dims in re.findall(r": ([a-z0-9]+)\[([0-9,]*)\]", signature):
        shape = tuple(int(d) for d in dims.split(",") if d)
        out.append((rng.standard_normal(shape) * 0.3).astype(np.float32) if dtype == "f32"
                   else np.ones(shape, DTYPES[dtype]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--calls", type=int, default=500, help="timed calls per module and round")
    a = ap.parse_args()
    cfg = C.WORKLOADS["sine"]
    _, step, _ = MJ.make_fns(cfg, False, "vmap")
    params = MJ.to_jax_params(C.init_params(cfg))
    state = MJ.optax.adam(cfg["lr"]).init(params)
    check = MJ.to_device(C.sample_batch(cfg, np.random.default_rng(C.SEED_CHECK)), "mlp")
    lowered = jax.jit(step).lower(params, state, check)
    with open(os.path.join(a.dir, "jax_optimized_hlo.txt"), "w") as f:
        f.write(lowered.compile().as_text())
    client = jax.devices()[0].client
    modules = {"jax": load(client, str(lowered.compiler_ir()))}
    jax.config.update("jax_enable_x64", True)  # TensorFlow passes Adam's iteration as s64
    with open(os.path.join(a.dir, "ours_step.hlo.pb"), "rb") as f:
        modules["ours"] = load(client, _jax.mlir.hlo_to_stablehlo(f.read()))
    with open(os.path.join(a.dir, "ours_optimized_by_jax_xla.txt"), "w") as f:
        f.write(modules["ours"].hlo_modules()[0].to_string())
    rng = np.random.default_rng(0)
    host = {name: arguments(m, rng) for name, m in modules.items()}
    times = {name: [] for name in modules}
    for _ in range(a.rounds):
        for name, module in modules.items():
            for i in range(a.calls + 20):
                # fresh buffers for every call: our module donates the variables' buffers
                args = jax.block_until_ready([jax.device_put(x) for x in host[name]])
                start = time.perf_counter()
                jax.block_until_ready(module.execute(args))
                if i >= 20:
                    times[name].append(time.perf_counter() - start)
    print(json.dumps({name: dict(min_ms=1e3 * min(t), median_ms=1e3 * float(np.median(t)), n=len(t))
                      for name, t in times.items()}))


if __name__ == "__main__":
    main()
