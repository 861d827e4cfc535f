"""Meta-training on several devices or machines with ``tf.distribute``.

Build and compile the ``MAML`` inside ``strategy(name).scope()`` and ``fit`` it on
``shard_episodes(dataset, strategy)``: Keras splits every meta-batch's task axis over
the replicas, and ``MAML.train_step`` weights each replica's gradient by its share of
the tasks before the optimizer sums them, so one step equals the single-device step
on the whole meta-batch.

- ``"mirrored"``: every local GPU (or the CPUs when there is none), one process.
- ``"multi-worker"``: the same command on every machine, each with its own
  ``TF_CONFIG``; create the strategy first thing, before any other TensorFlow op.

Create one strategy per process: two distributed strategies in one process can mix
up their collective ops.

Keras applies optimizer gradient clipping (``clipnorm``...) per replica, before the
sum, so a clipped update differs from the single-device one.
"""
import json
import os

from maml_tf.core.arguments import one_of

STRATEGIES = ("default", "mirrored", "multi-worker")

_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


class TFConfigError(ValueError):
    """``TF_CONFIG`` missing or not a usable multi-worker cluster description."""


def strategy(name="default"):
    """The ``tf.distribute.Strategy`` called ``name`` (the CLI's ``--strategy``).

    ``"default"`` is TensorFlow's default strategy (one device, what Keras uses when no
    strategy is chosen), ``"mirrored"`` a ``MirroredStrategy`` over the local GPUs and
    ``"multi-worker"`` a ``MultiWorkerMirroredStrategy`` over the cluster in
    ``TF_CONFIG``, checked first so a bad value fails here and not in a collective op.
    """
    one_of("strategy", name, STRATEGIES)
    import tensorflow as tf  # on use: the CLI lists the strategies without loading TensorFlow
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    cluster_spec()  # multi-worker
    return tf.distribute.MultiWorkerMirroredStrategy()


def cluster_spec(environ=None):
    """Parse and check ``TF_CONFIG`` (from ``environ``, default ``os.environ``).

    Returns the parsed dict. Raises ``TFConfigError`` naming what to set.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        raise TFConfigError(
            "--strategy multi-worker needs the TF_CONFIG environment variable on every worker, "
            f"e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}': the same cluster everywhere and each "
            "worker's own index (0 is the chief, which writes checkpoints and logs).")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TFConfigError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. "
                            f"{_TF_CONFIG_EXAMPLE}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise TFConfigError('TF_CONFIG needs "cluster": {"worker": ["host:port", ...]} listing '
                            f"every worker; got {raw}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
                isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses):
            raise TFConfigError(f'TF_CONFIG cluster "{job}" must be a list of "host:port" '
                                f"strings; got {addresses!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise TFConfigError('TF_CONFIG needs "task": {"type": "worker", "index": I} naming a job '
                            f"of the cluster ({sorted(cluster)}); got task={task!r}")
    index, size = task.get("index"), len(cluster[task["type"]])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise TFConfigError(f'TF_CONFIG task index must be an integer in 0..{size - 1} (this '
                            f'worker\'s position in cluster["{task["type"]}"]); got {index!r}')
    return config


def check_meta_batch(meta_batch_size, strategy):
    """Tasks per replica; a clear error unless the meta-batch splits evenly.

    Keras splits a meta-batch's task axis over ``strategy.num_replicas_in_sync``
    replicas. The meta-update stays exact for an uneven split, but replicas then idle,
    the logged loss averages unequal replica means, and a replica left without a task
    fails deep inside the step.
    """
    replicas = strategy.num_replicas_in_sync
    if meta_batch_size % replicas:
        raise ValueError(
            f"The meta-batch of {meta_batch_size} tasks does not split evenly over "
            f"{replicas} replicas: choose a meta-batch size that is a multiple of {replicas} "
            f"(e.g. {max(replicas, meta_batch_size - meta_batch_size % replicas)}) or fewer "
            "devices/workers.")
    return meta_batch_size // replicas


def shard_episodes(dataset, strategy):
    """Prepare a stream of meta-batches for ``fit`` under ``strategy``.

    Checks that each meta-batch (the dataset's static task axis) splits evenly over
    the replicas, and shards by data: every worker generates the same meta-batches
    (so use the same seed on every worker) and keeps its own tasks of each, so the
    workers together see exactly the single-device meta-batches. (Keras' default tries
    to shard by input files first, which episode samplers do not read.)
    """
    import tensorflow as tf  # on use: the CLI lists the strategies without loading TensorFlow
    tasks = tf.nest.flatten(dataset.element_spec)[0].shape[:1]
    if tasks.rank is None or tasks[0] is None:
        raise ValueError("The meta-batch size must be static to split it over replicas; got "
                         f"element spec {dataset.element_spec}.")
    check_meta_batch(tasks[0], strategy)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
