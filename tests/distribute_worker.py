"""Child process of tests/test_distribute.py: MAML meta-steps under a tf.distribute
strategy, results written to an ``.npz`` file.

    python distribute_worker.py mirrored OUT.npz KIND     # 2 logical CPUs vs one device
    python distribute_worker.py checkpoints OUT.npz DIR   # backups across strategies
    python distribute_worker.py worker OUT.npz            # one MultiWorkerMirrored worker

TensorFlow fixes its devices (two logical CPUs) and collective ops (TF_CONFIG) when it
starts, so each scenario runs in a process of its own and the test process keeps its
plain single-CPU setup. ``train`` is also imported by the test for the single-device
reference of the multi-worker run.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from conftest import (classification_episodes, classification_loss, conv_bn_model,  # noqa: E402
                      mlp_model, regression_episodes)
from maml_tf import MAML, distribute  # noqa: E402

TASKS = 4  # per meta-batch: 2 per replica


def build(kind):
    """A compiled MAML with the same weights in every process (drawn from numpy).

    The MLP uses a Keras ``Loss`` object (mean reduction, which Keras rescales under a
    strategy); the conv net adds inductive BN (moving statistics written back), the
    ``sum_over_shots`` reduction and a compile metric. SGD with momentum is linear in
    the gradient, so a mis-scaled all-reduce shows, and has state for the checkpoint tests.
    """
    if kind == "mlp":
        maml = MAML(mlp_model(), inner_lr=0.1, inner_steps=2)
        loss, metrics = keras.losses.MeanSquaredError(), None
    else:
        maml = MAML(conv_bn_model(), inner_lr=0.1, inner_steps=2, batch_norm="inductive",
                    loss_reduction="sum_over_shots")
        loss, metrics = classification_loss(), [keras.metrics.SparseCategoricalAccuracy(name="query_accuracy")]
    rng = np.random.default_rng(7)
    for v in maml.model.trainable_variables:
        v.assign(rng.normal(scale=0.5, size=v.shape).astype(v.dtype))
    maml.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=loss, metrics=metrics)
    return maml


def meta_batches(kind, steps):
    """``steps`` different meta-batches of ``TASKS`` tasks, one per dataset element."""
    rng = np.random.default_rng(11)
    make = regression_episodes if kind == "mlp" else classification_episodes
    batches = [make(rng, tasks=TASKS) for _ in range(steps)]
    return tf.data.Dataset.from_tensor_slices(
        tf.nest.map_structure(lambda *t: np.stack(t), *batches))


def train(kind, strategy, steps=1, callbacks=(), epochs=1):
    """Build under ``strategy`` and meta-train ``epochs`` x ``steps`` steps; the MAML
    and its history."""
    with strategy.scope():
        maml = build(kind)
    data = distribute.shard_episodes(meta_batches(kind, steps).repeat(), strategy)
    history = maml.fit(data, epochs=epochs, steps_per_epoch=steps, callbacks=list(callbacks),
                       verbose=0)
    return maml, history.history


def weights(maml, prefix):
    return {f"{prefix}/{v.path}": np.asarray(v) for v in maml.weights}


def replica_spread(maml, strategy):
    """Largest difference between the replicas' copies of each variable."""
    out = {}
    for v in maml.weights:
        copies = [np.asarray(c) for c in strategy.experimental_local_results(v.value)]
        out[f"spread/{v.path}"] = max(np.max(np.abs(c - copies[0])) for c in copies)
    return out


def mirrored(kind):
    """One meta-step on one device and under MirroredStrategy over two CPUs."""
    strategy = distribute.strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.extended.worker_devices
    default = distribute.strategy("default")
    single, single_logs = train(kind, default)
    mirror, mirror_logs = train(kind, strategy)
    test_data = meta_batches(kind, 2).skip(1)  # a meta-batch not trained on
    evaluations = [maml.evaluate(distribute.shard_episodes(test_data, s), verbose=0, return_dict=True)
                   for maml, s in ((single, default), (mirror, strategy))]
    per_task = [maml.evaluate_tasks(next(iter(test_data)))["loss"] for maml in (single, mirror)]
    try:
        distribute.shard_episodes(meta_batches(kind, 1).unbatch().batch(3, drop_remainder=True), strategy)
        uneven_error = ""
    except ValueError as error:
        uneven_error = str(error)
    return {**weights(single, "single"), **weights(mirror, "mirrored"),
            **replica_spread(mirror, strategy), "single_loss": single_logs["loss"],
            "mirrored_loss": mirror_logs["loss"], "uneven_error": uneven_error,
            "single_tasks": per_task[0], "mirrored_tasks": per_task[1],
            **{f"{name}_evaluate/{key}": value for name, logs in zip(("single", "mirrored"), evaluations)
               for key, value in logs.items()}}


def checkpoints(directory):
    """Backups (``save_weights`` files plus the epoch) written under one strategy resume
    training under the other: two one-step epochs with the switch in between must equal
    two epochs on one device, momentum included."""
    default, mirrored_ = distribute.strategy("default"), distribute.strategy("mirrored")
    out = weights(train("conv", default, epochs=2)[0], "reference")
    for name, first, second in (("to_single", mirrored_, default), ("to_mirrored", default, mirrored_)):
        backup = os.path.join(directory, name)
        train("conv", first, callbacks=[keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
        resumed, logs = train("conv", second, epochs=2,
                              callbacks=[keras.callbacks.BackupAndRestore(backup)])
        out.update(weights(resumed, name))
        out[f"{name}_epochs_run"] = len(logs["loss"])
    return out


def worker():
    """One worker of the cluster in TF_CONFIG: two meta-steps, each on its half of the
    meta-batch."""
    strategy = distribute.strategy("multi-worker")
    maml, logs = train("mlp", strategy, steps=2)
    # the tasks this worker gets of the first meta-batch (Keras distributes the same way)
    data = distribute.shard_episodes(meta_batches("mlp", 2), strategy)
    first = next(iter(strategy.experimental_distribute_dataset(data)))
    local = strategy.experimental_local_results(first["support"][0])
    return {**weights(maml, "worker"), "loss": logs["loss"], "support_x": np.concatenate(local)}


def main(scenario, out, *args):
    if scenario == "worker":  # collectives must be set up before any other TF op
        result = worker()
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        result = mirrored(*args) if scenario == "mirrored" else checkpoints(*args)
    np.savez(out, **result)


if __name__ == "__main__":
    tf.config.threading.set_intra_op_parallelism_threads(1)  # a light load on shared cores
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.get_logger().setLevel("ERROR")
    main(*sys.argv[1:])
