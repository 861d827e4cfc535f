"""Inner-loop update rules: how one task's support gradient changes the weights.

Each rule is a Keras layer so that its learned rates (if any) are meta-parameters:
they appear in ``MAML.trainable_variables`` and the outer optimizer trains them.
"""
import keras
import tensorflow as tf

from maml_tf.core import arguments


class InnerSGD(keras.layers.Layer):
    """Plain gradient step ``theta - alpha * grad`` (the paper's rule, Eq. 1)."""

    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(**kwargs)
        self.learning_rate = arguments.positive_number("inner learning_rate", learning_rate)

    def build_for(self, variables, inner_steps):
        """Create learned rates for ``variables`` (none for plain SGD)."""
        self.built = True

    def step_sizes(self, step):
        """One step size (scalar or per-parameter tensor) per adapted variable."""
        return None

    def update(self, params, grads, step):
        sizes = self.step_sizes(step)
        if sizes is None:
            return [p - tf.cast(self.learning_rate, p.dtype) * g for p, g in zip(params, grads)]
        return [p - tf.cast(a, p.dtype) * g for p, g, a in zip(params, grads, sizes)]

    def get_config(self):
        return {**super().get_config(), "learning_rate": self.learning_rate}


class MetaSGD(InnerSGD):
    """Per-parameter learned step sizes (Li et al. 2017, Meta-SGD), initialised to alpha."""

    def build_for(self, variables, inner_steps):
        self.rates = [
            self.add_weight(
                shape=v.shape, dtype=v.dtype, name=f"lr_{i}",
                initializer=keras.initializers.Constant(self.learning_rate),
            )
            for i, v in enumerate(variables)
        ]
        self.built = True

    def step_sizes(self, step):
        return [r.value for r in self.rates]


class PerLayerPerStepLR(InnerSGD):
    """One learned step size per adapted variable and inner step (MAML++ LSLR,
    Antoniou et al. 2019). Evaluating with more steps than trained reuses the last."""

    def build_for(self, variables, inner_steps):
        self.inner_steps = int(inner_steps)
        self.rates = self.add_weight(
            shape=(len(variables), self.inner_steps), dtype=variables[0].dtype if variables else "float32",
            name="lslr", initializer=keras.initializers.Constant(self.learning_rate),
        )
        self.built = True

    def step_sizes(self, step):
        column = self.rates[:, min(step, self.inner_steps - 1)]
        return tf.unstack(column, num=self.rates.shape[0])


INNER_RULES = {"sgd": InnerSGD, "meta-sgd": MetaSGD, "lslr": PerLayerPerStepLR}


def get(rule, learning_rate):
    """An inner rule from its name (``sgd``, ``meta-sgd``, ``lslr``) or an instance."""
    if isinstance(rule, InnerSGD):
        return rule
    return INNER_RULES[arguments.one_of("inner_rule", rule, INNER_RULES, " or an InnerSGD")](learning_rate)
