"""The pretrained baseline of few-shot classification (the paper has none for Omniglot):
conv4 trained as one classifier over every training class, then, at test, a new zero N-way head
fine-tuned on the support set with the backbone frozen.

Why the head only: this is the standard baseline (Chen et al. 2019, "A Closer Look at Few-shot
Classification"; Tian et al. 2020), and fine-tuning all weights of a network trained for thousands
of classes on 5 images moves batch norm and the features far from what training learned; the head
is linear, so its fine-tuning is a convex problem that needs no tuning but the step size. Batch
norm uses the moving statistics (inductive), as a network trained by plain classification expects.
"""
import dataclasses

import keras

from maml_tf import baselines
from maml_tf.callbacks import SaveCheckpoints, TimeLimit
from maml_tf.experiments import base, classification
from maml_tf.experiments.runs import RunDirectory

PART = "pretrained"
FREE_FIELDS = ("name", "iterations", "eval_tasks", "validation_tasks", "curve_steps", "eval_inner_steps",
               "task_parallelism", "precision")


def classifier(preset, num_classes):
    """The preset's network (conv4 or fc) with ``num_classes`` outputs, compiled for plain
    classification with the preset's outer learning rate."""
    model = classification.build_model(dataclasses.replace(preset, ways=num_classes))
    model.compile(optimizer=keras.optimizers.Adam(preset.outer_lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def _setup(preset, run_dir, images_shape):
    classes = images_shape[0] * (4 if preset.rotate else 1)
    model = classifier(preset, classes)
    model.optimizer.build(model.trainable_variables)
    return model, RunDirectory(run_dir).checkpoints(PART, model=model, optimizer=model.optimizer)


def train(preset, run_dir, iterations, batch_size=128, steps_per_epoch=500, data_dir=None, deadline=None,
          verbose=0):
    """Train the classifier ``iterations`` Adam steps of ``batch_size`` training images, resuming
    from ``run_dir`` (a checkpoint every ``steps_per_epoch``). Returns ``(model, iterations_done)``."""
    if iterations % steps_per_epoch:
        raise ValueError(f"iterations ({iterations}) must be a multiple of steps_per_epoch ({steps_per_epoch}).")
    run = RunDirectory(run_dir)
    run.start(f"{preset.dataset}_pretrained", dataclasses.replace(preset, iterations=iterations), FREE_FIELDS,
              parts=(PART,))
    keras.utils.set_random_seed(preset.seed)
    images = classification.load_split(preset, "train", data_dir)
    model, checkpoints = _setup(preset, run_dir, images.shape)
    done = started = checkpoints.restore()
    if done < iterations:
        run.trim_log(PART, "epoch", done // steps_per_epoch - 1)
        data = baselines.classifier_dataset(images, batch_size, seed=preset.seed, start=done, rotate=preset.rotate)
        limit = [] if deadline is None else [TimeLimit(base.Deadline.of(deadline))]
        try:
            model.fit(data, shuffle=False, epochs=iterations // steps_per_epoch, initial_epoch=done // steps_per_epoch,
                      steps_per_epoch=steps_per_epoch, verbose=verbose,
                      callbacks=[*limit, keras.callbacks.TerminateOnNaN(raise_error=True),
                                 keras.callbacks.CSVLogger(run.log_path(PART), append=True),
                                 SaveCheckpoints(checkpoints, steps_per_epoch)])
        finally:
            done = int(checkpoints.iteration.numpy())
            run.record_training(started, done, part=PART, precision=preset.precision)
    return model, done


def fine_tuner(preset, model, inner_lr, steps):
    """``model`` (the trained classifier) as an N-way learner of ``preset.ways``: a new zero head
    fine-tuned by ``steps`` SGD steps of ``inner_lr`` on each task's support set."""
    return baselines.fine_tuner(baselines.with_new_head(model, preset.ways), inner_lr, steps, adapt="head",
                                batch_norm="inductive",
                                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
