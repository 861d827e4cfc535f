"""Task switching: does a model stay adaptable after it has adapted?

Along a chain of tasks A -> B -> A -> C -> ..., each link adapts either from the weights
the previous link ended at (``no_reset``) or from the meta-learned weights (``reset``,
the paper's protocol: Finn et al. 2017, Algorithm 2 always starts from theta). Comparing
the two at every switch shows whether adapted weights are still a good place to adapt from.
"""
import numpy as np
import tensorflow as tf

from maml_tf.core import episodes as episode_utils
from maml_tf.core import meta_gradient
from maml_tf.evaluation.protocol import mean_ci95
from maml_tf.evaluation.settings import check_steps

MODES = ("reset", "no_reset")


def task_chain(pattern, tasks):
    """The links of ``pattern`` (e.g. ``"ABACA"``): ``tasks[letter]`` for each letter, so a
    letter seen again is the same task again (same support and query sets)."""
    if not pattern:
        raise ValueError("pattern is empty: give the chain's tasks as letters, e.g. 'ABACA'.")
    missing = sorted(set(pattern) - set(tasks))
    if missing:
        raise ValueError(f"pattern {pattern!r} names tasks {', '.join(missing)} that are not given "
                         f"(given: {', '.join(sorted(tasks))}).")
    return [tasks[letter] for letter in pattern]


def distance_from(weights, reference):
    """Per-chain L2 distance (over all tensors) between weights stacked ``[chains, *shape]``
    and ``reference``: one weight list, or stacked as ``weights``. Returns ``[chains]``."""
    total = 0.0
    for w, r in zip(weights, reference):
        w, r = np.asarray(w, np.float64), np.asarray(r, np.float64)
        total = total + np.square(w - (r if r.ndim == w.ndim else r[None])).reshape(len(w), -1).sum(axis=1)
    return np.sqrt(total)


def global_norm(weights):
    """L2 norm of a weight list (all tensors together)."""
    return float(np.sqrt(sum(np.square(np.asarray(w, np.float64)).sum() for w in weights)))


def over_chains(per_chain):
    """``{"mean", "ci95", "median", "diverged", "per_chain"}`` of a ``[chains, ...]`` array: the
    statistics over the chains whose value is finite (95% CI), ``diverged`` the count of the
    others (repeated inner steps from adapted weights can overshoot to inf / NaN)."""
    per_chain = np.asarray(per_chain, np.float64)
    finite = np.isfinite(per_chain)
    if finite.all():
        mean, ci = mean_ci95(per_chain)
        median = np.median(per_chain, axis=0)
    else:
        columns = [c[np.isfinite(c)] for c in per_chain.reshape(len(per_chain), -1).T]
        stats = np.array([(*mean_ci95(c), np.median(c)) if len(c) else (np.nan,) * 3 for c in columns])
        mean, ci, median = (stats[:, i].reshape(per_chain.shape[1:]) for i in range(3))
    return {"mean": mean, "ci95": ci, "median": median, "diverged": (~finite).sum(axis=0), "per_chain": per_chain}


def task_switching(maml, chain, steps=None):
    """Adapt along chains of tasks with and without resetting to the meta-learned weights.

    Args:
        maml: a compiled ``MAML`` (its weights are the meta-learned ones).
        chain: the links in order, each a meta-batch ``{"support": (x, y), "query": (x, y)}``
            whose leading axis indexes the chains (link i of chain c is task c of
            ``chain[i]``); see :func:`task_chain` for ``A -> B -> A`` patterns.
        steps: inner steps per link (default ``maml.eval_inner_steps``).

    Returns:
        ``{"steps", "num_chains", "num_links", "weight_norm", "reset": {...}, "no_reset": {...}}``;
        each mode holds :func:`over_chains` dicts (numpy):
        ``loss`` (and ``accuracy`` for integer labels) ``[links, steps + 1]``: the link's query
        set after 0..steps steps; ``gradient_norm`` ``[links]``: of the support loss in the
        adapted weights at the link's start; ``distance`` ``[links + 1]``: L2 distance from the
        meta-learned weights at the chain's start (0) and after each link;
        ``relative_distance``: ``distance / weight_norm`` (the meta-weights' norm).
    """
    steps = check_steps(maml.eval_inner_steps if steps is None else steps)
    links = [episode_utils.unpack(link, maml.model) for link in chain]
    if not links:
        raise ValueError("chain is empty: give at least one link (a meta-batch of episodes), e.g. "
                         "task_chain('ABA', {'A': a, 'B': b}).")
    sizes = {int(support[0].shape[0]) for support, _ in links}
    if len(sizes) != 1:
        raise ValueError(f"Every link needs the same number of chains (leading axis); got {sorted(sizes)}.")
    num_chains = sizes.pop()
    maml._require_compiled()
    meta = [tf.convert_to_tensor(v) for v in maml.model.trainable_variables]
    meta_stacked = [tf.repeat(m[None], num_chains, axis=0) for m in meta]
    run_link = _link_function(maml, steps)
    result = {"steps": steps, "num_chains": num_chains, "num_links": len(links), "weight_norm": global_norm(meta)}
    for mode in MODES:
        weights, records = meta_stacked, []
        for support, query in links:
            out = run_link(meta_stacked if mode == "reset" else weights, *support, *query)
            weights = out.pop("weights")
            out["distance"] = distance_from(weights, meta)
            records.append({k: np.asarray(v) for k, v in out.items()})
        per_chain = {key: np.stack([r[key] for r in records], axis=1) for key in records[0]}
        per_chain["distance"] = np.concatenate([np.zeros((num_chains, 1)), per_chain["distance"]], axis=1)
        per_chain["relative_distance"] = per_chain["distance"] / result["weight_norm"]
        result[mode] = {key: over_chains(value) for key, value in per_chain.items()}
    return result


def _link_function(maml, steps):
    """A compiled function: stacked start weights and one link's episodes -> adapted weights,
    query loss (and accuracy) after 0..steps steps and the start's support-gradient norm."""
    adapted = maml.inner_loop.adapted

    def one(args):
        start, sx, sy, qx, qy = args
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(start)
            loss = maml.inner_loop.task_loss(sy, maml.predict_with(start, sx))
        grads = tape.gradient(loss, [start[i] for i in adapted], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        weights, record = maml.inner_loop.adapt(start, sx, sy, steps, training=False, per_step=True,
                                                query=(qx, qy))
        out = {"weights": weights, "loss": tf.stack([r[0] for r in record]),
               "gradient_norm": tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))}
        if record[0][1] is not None:
            out["accuracy"] = tf.stack([r[1] for r in record])
        return out

    parallelism = maml._resolved_parallelism()
    return tf.function(lambda *args: meta_gradient.map_tasks(one, (list(args[0]), *args[1:]), parallelism))
