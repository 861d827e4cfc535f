"""Every use of private Keras API in maml_tf, in one place.

Keras 3 has no public way to do these few things. ``PRIVATE_API`` names each one and
``check()`` verifies it against the installed Keras, so a Keras upgrade that removes or
changes one fails tests/test_keras_internals.py naming it, not a meta-gradient later.
"""
import inspect

import keras
import tensorflow as tf

# name -> what maml_tf relies on (the contract check() verifies).
PRIVATE_API = {
    "keras.Layer._flatten_layers": "method (include_self, recursive) listing nested layers",
    "keras.layers.BatchNormalization._moments": "method (inputs, mask) -> (mean, variance) that "
                                                "call() uses for batch statistics",
    "keras.Model._maybe_symbolic_build": "TF-trainer hook (iterator, data_batch) that fit / "
                                         "evaluate / *_on_batch call before a distributed step",
    "keras.Model._distribute_strategy": "attribute: the strategy whose scope the model was "
                                        "created in, None outside tf.distribute",
    "keras.Model._compile_metrics": "attribute: compile(metrics=...) as one metric, None without",
}


def all_layers(model):
    """Every layer nested in ``model`` (recursively), the model itself excluded.

    ``model.layers`` is public but one level deep and, for subclassed models, lists
    only what Keras tracked; the recursive walk is private.
    """
    return list(model._flatten_layers(include_self=False, recursive=True))


def override_batch_norm_moments(layer, moments):
    """Make ``layer`` (a BatchNormalization) compute batch statistics with
    ``moments(layer, inputs, mask)`` until :func:`restore_batch_norm_moments`."""
    layer.__dict__["_moments"] = lambda inputs, mask: moments(layer, inputs, mask)


def restore_batch_norm_moments(layer):
    layer.__dict__.pop("_moments", None)


def stock_batch_norm_moments(layer, inputs, mask):
    """Keras' own batch statistics for ``layer``."""
    return type(layer)._moments(layer, inputs, mask)


class TrainerHooks:
    """Overrides of private ``keras.Model`` hooks; a mixin for ``MAML``."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Create the optimizer's and compile metrics' variables in the strategy's scope
        before a distributed fit / evaluate (on one device they are created when the
        step is traced).

        Keras' own version averages a batch over the replicas, which fails for dict data
        under MultiWorkerMirroredStrategy (keras-team/keras#20329), then calls the model
        on it, which takes examples, not episodes.
        """
        if self._distribute_strategy is None:
            return
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            metrics = self._compile_metrics
            if metrics is not None and not metrics.built:
                if data_batch is None:  # one meta-batch, as Keras takes one
                    _, _, distributed = next(iter(iterator))
                    data_batch = next(distributed)
                else:  # (x, y, sample_weight) from train_on_batch / test_on_batch
                    data_batch = data_batch[0]
                local = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0], data_batch)
                labels, predictions = self._example_specs(local)
                metrics.build(labels, predictions)


def check():
    """The entries of ``PRIVATE_API`` the installed Keras no longer provides as used,
    as ``{name: what is wrong}`` (empty when all hold)."""
    problems = {}

    def expect(name, condition, detail):
        if not condition and name not in problems:
            problems[name] = detail

    def params(owner, method):
        fn = getattr(owner, method, None)
        return list(inspect.signature(fn).parameters) if callable(fn) else None

    expect("keras.Layer._flatten_layers",
           params(keras.Layer, "_flatten_layers") == ["self", "include_self", "recursive"],
           f"signature is {params(keras.Layer, '_flatten_layers')}")
    nested = keras.Sequential([keras.Input((2,)), keras.Sequential([keras.layers.Dense(1)])])
    try:
        found = [type(l).__name__ for l in all_layers(nested) if not isinstance(l, keras.layers.InputLayer)]
    except Exception as error:  # noqa: BLE001 - reported by name below
        found = repr(error)
    expect("keras.Layer._flatten_layers", found == ["Sequential", "Dense"],
           f"recursive listing of Sequential([Sequential([Dense])]) gave {found}")

    bn = keras.layers.BatchNormalization()
    expect("keras.layers.BatchNormalization._moments",
           params(keras.layers.BatchNormalization, "_moments") == ["self", "inputs", "mask"],
           f"signature is {params(keras.layers.BatchNormalization, '_moments')}")
    x = tf.constant([[1.0, 2.0], [3.0, 6.0]])
    calls = []

    def moments(layer, inputs, mask):
        calls.append(layer)
        return stock_batch_norm_moments(layer, inputs, mask)

    try:
        bn(x, training=True)
        override_batch_norm_moments(bn, moments)
        bn(x, training=True)
        restore_batch_norm_moments(bn)
        mean, variance = stock_batch_norm_moments(bn, x, None)
        stock_ok = (mean.shape == (2,) and variance.shape == (2,)
                    and bool(tf.reduce_all(tf.abs(mean - [2.0, 4.0]) < 1e-6)))
    except Exception as error:  # noqa: BLE001
        calls, stock_ok = repr(error), False
    expect("keras.layers.BatchNormalization._moments", calls == [bn] and stock_ok,
           "call(training=True) no longer takes its statistics from _moments(inputs, mask)")

    hook = params(keras.Model, "_maybe_symbolic_build")
    expect("keras.Model._maybe_symbolic_build", hook == ["self", "iterator", "data_batch"],
           f"signature is {hook}")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    expect("keras.Model._distribute_strategy",
           "_distribute_strategy" in vars(model) and model._distribute_strategy is None,
           "a model built outside tf.distribute has no _distribute_strategy = None")
    model.compile(loss="mse", metrics=["mae"])
    compiled = getattr(model, "_compile_metrics", None)
    expect("keras.Model._compile_metrics",
           isinstance(compiled, keras.metrics.Metric) and hasattr(compiled, "built")
           and callable(getattr(compiled, "build", None)),
           f"compile(metrics=...) left _compile_metrics = {compiled!r}")
    return problems
