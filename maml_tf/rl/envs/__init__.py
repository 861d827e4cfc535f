"""The paper's RL task distributions (Section 5.3) as tf-agents environments."""
from maml_tf.rl.envs.base import BatchedTaskEnvironment, TaskEnvironment
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
    """The environment registered as ``name``, batched to ``batch_size`` if given.

    Natively batched environments (navigation) take ``batch_size`` themselves;
    the others are ``batch_size`` instances in a :class:`BatchedTaskEnvironment`,
    member i seeded with ``seed + i`` when a ``seed`` is given.
    """
    if name not in ENVIRONMENTS:
        raise ValueError(f"Unknown environment {name!r}; choose from {sorted(ENVIRONMENTS)}.")
    cls = ENVIRONMENTS[name]
    if cls.native_batching:
        return cls(batch_size=batch_size, **kwargs)
    if batch_size is None:
        return cls(**kwargs)
    seed = kwargs.pop("seed", None)
    return BatchedTaskEnvironment(
        [cls(seed=None if seed is None else seed + i, **kwargs) for i in range(batch_size)])


__all__ = ["ENVIRONMENTS", "AntDir", "AntVel", "BatchedTaskEnvironment", "HalfCheetahDir",
           "HalfCheetahVel", "Locomotion", "Navigation2D", "TaskEnvironment", "make"]
