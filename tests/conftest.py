"""Shared fixtures and helpers for the maml-tf test suite.

Models are always built *after* the dtype fixture has set ``floatx`` so that their
weights have the intended precision. Finite-difference checks use float64.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # retracing notices from per-test tf.functions

from maml_tf import MAML  # noqa: E402

SCCE = keras.losses.SparseCategoricalCrossentropy


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global seeds."""
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(scope="session")
def omniglot_data_dir(tmp_path_factory):
    """A TFDS data dir holding the real Omniglot: the default one when it is prepared there,
    else one prepared now from the zips of ``data_sources.OMNIGLOT_SOURCE`` (about a minute);
    skips when neither exists. For code that reads the default dir (the studies), set
    ``TFDS_DATA_DIR`` to it (``use_real_omniglot``)."""
    from data_sources import OMNIGLOT_SOURCE
    from maml_tf.datasets import omniglot, paths
    try:
        omniglot.load_characters(paths.data_dir())
        return paths.data_dir()
    except FileNotFoundError:
        pass
    if not os.path.isdir(OMNIGLOT_SOURCE):
        pytest.skip(f"the real Omniglot is neither prepared in {paths.data_dir()} nor in {OMNIGLOT_SOURCE}")
    data_dir = omniglot.prepare(OMNIGLOT_SOURCE, str(tmp_path_factory.mktemp("tfds")))
    omniglot.load_characters(data_dir)
    return data_dir


@pytest.fixture
def use_real_omniglot(omniglot_data_dir, monkeypatch):
    """The real Omniglot as the default TFDS data dir for this test."""
    monkeypatch.setenv("TFDS_DATA_DIR", omniglot_data_dir)
    return omniglot_data_dir


@pytest.fixture
def float64():
    """Run a test in float64 (finite differences); restores float32 afterwards."""
    previous_floatx = keras.config.floatx()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    # Layers take their dtype from the global policy, which Keras caches from floatx the
    # first time a layer is built: set it too, or models here could silently be float32.
    keras.config.set_dtype_policy("float64")
    keras.utils.set_random_seed(0)
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- models
def mlp_model(input_dim=1, hidden=(16, 16), activation="tanh", output_dim=1):
    """A small regression MLP (functional), e.g. 1-16-16-1 tanh."""
    inputs = keras.Input((input_dim,))
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(h)
    return keras.Model(inputs, keras.layers.Dense(output_dim, name="head")(h))


def conv_bn_model(num_classes=3, size=8):
    """Input 8x8x1 -> Conv2D(4, 3) -> BN -> ReLU -> Flatten -> Dense(3)."""
    inputs = keras.Input((size, size, 1))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="head")(h))


def compiled_maml(model, loss="mse", optimizer="adam", **kwargs):
    maml = MAML(model, **kwargs)
    maml.compile(optimizer=optimizer, loss=loss)
    return maml


def classification_loss():
    return SCCE(from_logits=True)


# ----------------------------------------------------------------------------- data
def regression_episodes(rng, tasks=3, support=5, query=6, dim=1, dtype=None):
    """Random sinusoid-like regression episodes as tensors of ``dtype`` (floatx)."""
    dtype = dtype or keras.config.floatx()

    def one(n):
        x = rng.uniform(-3, 3, size=(tasks, n, dim))
        amp = rng.uniform(0.5, 2.0, size=(tasks, 1, 1))
        y = amp * np.sin(x[..., :1] - rng.uniform(0, 3, size=(tasks, 1, 1)))
        return tf.constant(x, dtype), tf.constant(y, dtype)

    return {"support": one(support), "query": one(query)}


def classification_episodes(rng, tasks=2, ways=3, shots=2, query_shots=2, size=8, dtype=None):
    """Random N-way image episodes with integer labels 0..N-1."""
    dtype = dtype or keras.config.floatx()

    def one(k):
        x = rng.normal(size=(tasks, ways * k, size, size, 1))
        y = np.tile(np.arange(ways), (tasks, k)).astype("int32")
        return tf.constant(x, dtype), tf.constant(y)

    return {"support": one(shots), "query": one(query_shots)}


# ----------------------------------------------------------------------------- numerics
def flat(tensors):
    return np.concatenate([np.ravel(np.asarray(t)) for t in tensors])


def random_directions(variables, count, rng):
    """``count`` random unit directions in the space of ``variables``."""
    out = []
    for _ in range(count):
        d = [rng.normal(size=tuple(v.shape)) for v in variables]
        norm = np.sqrt(sum(float(np.sum(x ** 2)) for x in d))
        out.append([x / norm for x in d])
    return out


def central_difference(loss_fn, variables, direction, eps=1e-5):
    """(L(w + eps d) - L(w - eps d)) / (2 eps), restoring the variables afterwards."""
    base = [v.numpy() for v in variables]
    try:
        for v, b, d in zip(variables, base, direction):
            v.assign(b + eps * d)
        plus = float(loss_fn())
        for v, b, d in zip(variables, base, direction):
            v.assign(b - eps * d)
        minus = float(loss_fn())
    finally:
        for v, b in zip(variables, base):
            v.assign(b)
    return (plus - minus) / (2 * eps)


def directional(grads, direction):
    return float(sum(np.sum(np.asarray(g) * d) for g, d in zip(grads, direction)))


def meta_loss_fn(maml, episodes):
    """A compiled function returning the meta-loss at the current variable values."""
    support, query = episodes["support"], episodes["query"]
    variables = maml.trainable_variables
    return tf.function(lambda: maml._meta_objective(support, query, variables)[0])


def meta_objective(maml, episodes):
    """``maml._meta_objective`` on ``episodes`` run as a tf.function (as in ``fit``).

    Returns ``(loss, accuracy, predictions, grads)`` (the first four outputs).
    """
    support, query = episodes["support"], episodes["query"]
    variables = maml.trainable_variables
    return tuple(tf.function(lambda: maml._meta_objective(support, query, variables))()[:4])


def meta_gradient(maml, episodes):
    """(loss, grads) from ``maml._meta_objective`` as numpy."""
    loss, _, _, grads = meta_objective(maml, episodes)
    return float(loss), [np.asarray(g) for g in grads]


def fd_errors(maml, episodes, rng, directions=3, eps=1e-5):
    """Directional derivative errors |FD - analytic| / ||grad|| along random directions.

    Returns ``(errors, analytic directional derivatives, gradient norm, gradients)``.
    """
    variables = maml.trainable_variables
    assert all(v.dtype == "float64" for v in variables), "finite differences need float64"
    _, grads = meta_gradient(maml, episodes)
    norm = float(np.linalg.norm(flat(grads)))
    loss_fn = meta_loss_fn(maml, episodes)
    errors, analytic = [], []
    for d in random_directions(variables, directions, rng):
        fd = central_difference(loss_fn, variables, d, eps)
        an = directional(grads, d)
        errors.append(abs(fd - an) / norm)
        analytic.append(an)
    return np.array(errors), np.array(analytic), norm, grads


# ----------------------------------------------------------------------------- scripts
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_reproduce_script(name):
    """Import ``reproduce/<name>.py`` as a module (its click command is ``.main``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_under_test",
                                                  os.path.join(REPO_ROOT, "reproduce", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
