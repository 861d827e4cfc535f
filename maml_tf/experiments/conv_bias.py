"""Convert a classification run directory's conv4 checkpoints to bias-free convs, once.

conv4 had a bias in each conv before batch norm until 2026-12-05 (the authors' layout). With
batch statistics the bias cancels exactly (BN subtracts the batch mean), so it is a dead
parameter; without it batch norm runs through the fused ops (``functional.BATCH_NORM_OP``).
The converter drops the conv biases and their Adam slots and subtracts each bias from the
moving mean of the BN after it, so that the model computes the same function with batch
statistics (transductive) and with moving statistics (inductive); it checks the rewritten
checkpoint against the values it meant to write before it replaces the old one::

    python -m maml_tf.experiments.conv_bias checkpoints/table1_omniglot/paper/5way1shot
"""
import glob
import os
import shutil
import sys

import numpy as np
import tensorflow as tf

from maml_tf.core import functional
from maml_tf.experiments import runs
from maml_tf.experiments.checkpoints import PREFIX, Checkpoints

COMMAND = "python -m maml_tf.experiments.conv_bias"


class ConvBiasRunDirectory(runs.RunDirectoryMismatch):
    """A run directory whose checkpoints have conv biases the model no longer has."""


def refuse_old_layout(run_dir, part_dir, model):
    """Raise :class:`ConvBiasRunDirectory`, naming the converter, if :func:`has_old_layout`."""
    if has_old_layout(part_dir, model):
        raise ConvBiasRunDirectory(
            f"{run_dir} holds checkpoints of conv4 with conv biases before batch norm (dropped "
            f"2026-12-05: a dead parameter under batch statistics): convert it once with "
            f"`{COMMAND} {run_dir}`.")


def has_old_layout(part_dir, model):
    """Whether the latest checkpoint in ``part_dir`` holds ``model`` (a Keras model, MAML
    included) with a bias in each of its bias-free convolutions. Reads the checkpoint's
    variable list only."""
    if model is None or not any(not conv.use_bias for conv in functional.convolutions(model)):
        return False
    saved = Checkpoints(part_dir).saved()
    if not saved:
        return False
    try:
        shapes = _saved_trainable_shapes(saved[-1])
    except (tf.errors.OpError, OSError, ValueError):  # damaged: restore() says so
        return False
    return bool(shapes) and shapes != _trainable_shapes(model) and shapes == _trainable_shapes(model, True)


def _saved_trainable_shapes(path):
    """Shapes of the optimizer's trainable variables in checkpoint ``path``, in order."""
    key = "optimizer/_trainable_variables/"
    found = {int(name[len(key):].split("/")[0]): tuple(shape)
             for name, shape in tf.train.list_variables(path) if name.startswith(key)}
    return [found[i] for i in sorted(found)]


def _trainable_shapes(model, with_conv_bias=False):
    """Shapes of ``model``'s trainable variables; ``with_conv_bias``: as if each bias-free conv
    had its bias (right after its kernel, Keras' order)."""
    kernels = {id(conv.kernel): conv.filters for conv in functional.convolutions(model) if not conv.use_bias}
    shapes = []
    for v in model.trainable_variables:
        shapes.append(tuple(v.shape))
        if with_conv_bias and id(v) in kernels:
            shapes.append((kernels[id(v)],))
    return shapes


def convert(run_dir):
    """Convert ``run_dir`` (a classification run of conv4) in place; returns the iteration of
    the converted checkpoint, None when there was nothing to convert."""
    from maml_tf.experiments import classification
    run = runs.RunDirectory(run_dir)
    record = run.record()
    if record is None:
        raise ValueError(f"{run_dir} holds no run ({runs.RECORD} is missing).")
    preset = runs.preset_of(record)
    if getattr(preset, "network", None) != "conv":
        return None
    part = run.part(classification.PART)
    new = _built(classification.build_maml(preset))
    if not has_old_layout(part, new):
        return None  # bias-free already (or no checkpoint)
    old = _built(classification.build_maml(preset, conv_bias=True))
    source = Checkpoints(part, model=old, optimizer=old.optimizer)
    iteration = source.restore()
    values = without_conv_biases(old)
    for key, v in state(new).items():
        v.assign(values[key])
    staging = part + ".bias_free"
    shutil.rmtree(staging, ignore_errors=True)
    Checkpoints(staging, model=new, optimizer=new.optimizer).save(
        iteration, env_steps=int(source.env_steps.numpy()), seconds=float(source.seconds.numpy()), last=True)
    check = _built(classification.build_maml(preset))
    assert Checkpoints(staging, model=check, optimizer=check.optimizer).restore() == iteration
    for key, v in state(check).items():
        np.testing.assert_array_equal(np.asarray(v), values[key], err_msg=f"{run_dir} converted: {key}")
    for old_file in [os.path.join(part, "checkpoint"), *glob.glob(os.path.join(part, f"{PREFIX}-*"))]:
        os.remove(old_file)
    for new_file in os.listdir(staging):
        os.replace(os.path.join(staging, new_file), os.path.join(part, new_file))
    os.rmdir(staging)
    return iteration


def _built(maml):
    maml.optimizer.build(maml.trainable_variables)  # Adam's slots exist before a restore fills them
    return maml


def state(maml):
    """``{key: variable}`` a checkpoint of ``maml`` holds: the model's by path, the optimizer's
    by path after the optimizer's name (Keras numbers a second one, ``adam_1/...``)."""
    found = {v.path: v for v in maml.variables}
    found.update({"optimizer/" + v.path.split("/", 1)[-1]: v for v in maml.optimizer.variables})
    assert len(found) == len(maml.variables) + len(maml.optimizer.variables), "variables of one path"
    return found


def without_conv_biases(old):
    """``{key: value}`` of ``old``'s variables and optimizer slots without the conv biases and
    their slots; each BN moving mean less the bias of the conv before it (conv4: ``conv_i`` ->
    ``bn_i``)."""
    biases = {conv.bias.path: np.asarray(conv.bias) for conv in functional.convolutions(old) if conv.use_bias}
    values = {}
    for key, v in state(old).items():
        value = np.asarray(v)
        if key.endswith("/moving_mean") and not key.startswith("optimizer/"):
            value = value - biases[key.replace("bn_", "conv_").replace("/moving_mean", "/bias")]
        values[key] = value
    return values


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(f"usage: {COMMAND} RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    for run_dir in argv:
        iteration = convert(run_dir)
        print(f"{run_dir}: " + ("nothing to convert (no conv biases)" if iteration is None
                                else f"checkpoint of iteration {iteration} converted to bias-free convs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
