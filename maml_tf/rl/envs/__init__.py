"""The paper's RL task distributions (Section 5.3) as tf-agents environments."""
from maml_tf.rl.envs.base import TaskEnvironment
from maml_tf.rl.envs.locomotion import AntDir, AntVel, HalfCheetahDir, HalfCheetahVel, Locomotion
from maml_tf.rl.envs.navigation import Navigation2D

ENVIRONMENTS = {
    "navigation": Navigation2D,
    "cheetah-vel": HalfCheetahVel,
    "cheetah-dir": HalfCheetahDir,
    "ant-vel": AntVel,
    "ant-dir": AntDir,
}


def make(name, batch_size=None, **kwargs):
    """The environment registered as ``name``: one member, or ``batch_size`` stepped together."""
    if name not in ENVIRONMENTS:
        raise ValueError(f"Unknown environment {name!r}; choose from {sorted(ENVIRONMENTS)}.")
    return ENVIRONMENTS[name](batch_size=batch_size, **kwargs)


__all__ = ["ENVIRONMENTS", "AntDir", "AntVel", "HalfCheetahDir", "HalfCheetahVel", "Locomotion",
           "Navigation2D", "TaskEnvironment", "make"]
