"""The private Keras API maml_tf relies on (maml_tf/core/keras_internals.py) still
behaves as used: a Keras upgrade that breaks one fails here, naming it."""
import ast
import os

import keras

from maml_tf.core import keras_internals

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "maml_tf")


def test_every_private_keras_name_still_works():
    problems = keras_internals.check()
    assert not problems, (f"Keras {keras.__version__} broke private API maml_tf uses "
                          "(maml_tf/core/keras_internals.py):\n" + "\n".join(
                              f"  {name}: {detail}" for name, detail in problems.items()))


def test_check_names_a_removed_private_name(monkeypatch):
    monkeypatch.delattr(keras.layers.BatchNormalization, "_moments")
    assert set(keras_internals.check()) == {"keras.layers.BatchNormalization._moments"}


def _private_keras_uses(path):
    """The underscore attribute names ``path`` uses (``x._name``), plus ``keras.src``
    if it imports from there."""
    tree = ast.parse(open(path).read())
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            uses.add(node.attr)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            names = [module] + [a.name for a in node.names]
            uses.update("keras.src" for n in names if n.startswith("keras.src"))
    return uses


def test_private_keras_names_live_in_keras_internals_only():
    """Outside keras_internals.py, no module uses one of its private Keras names."""
    private = {name.rsplit(".", 1)[1] for name in keras_internals.PRIVATE_API} | {"keras.src"}
    offenders = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".py") and not path.endswith(os.path.join("core", "keras_internals.py")):
                found = _private_keras_uses(path) & private
                if found:
                    offenders[os.path.relpath(path, PACKAGE)] = sorted(found)
    assert not offenders, offenders
