"""The paper's RL task distributions (Section 5.3) as tf-agents environments.

Navigation is NumPy only; the locomotion robots need MuJoCo and gymnasium (the
optional ``rl`` extra), so their module is imported only when one is made or named.
"""
import importlib

from maml_tf.core.arguments import one_of
from maml_tf.rl.envs.base import TaskEnvironment
from maml_tf.rl.envs.navigation import Navigation2D

# Environment name -> its class in maml_tf.rl.envs.locomotion.
_LOCOMOTION = {"cheetah-vel": "HalfCheetahVel", "cheetah-dir": "HalfCheetahDir",
               "ant-vel": "AntVel", "ant-dir": "AntDir"}
ENVIRONMENTS = ("navigation", *_LOCOMOTION)


def make(name, batch_size=None, **kwargs):
    """The environment registered as ``name``: one member, or ``batch_size`` stepped together."""
    one_of("env", name, ENVIRONMENTS)
    cls = Navigation2D if name == "navigation" else getattr(_locomotion(), _LOCOMOTION[name])
    return cls(batch_size=batch_size, **kwargs)


def _locomotion():
    return importlib.import_module("maml_tf.rl.envs.locomotion")


def __getattr__(name):
    """The locomotion classes, imported on first use (PEP 562)."""
    if name in (*_LOCOMOTION.values(), "Locomotion"):
        return getattr(_locomotion(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENVIRONMENTS", "AntDir", "AntVel", "HalfCheetahDir", "HalfCheetahVel", "Locomotion",
           "Navigation2D", "TaskEnvironment", "make"]
