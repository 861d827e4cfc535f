"""Loading a run's weights: the finished run's, else its latest checkpoint."""
import os


def load_first(maml, paths, missing):
    """Load the first existing file of ``paths`` into ``maml`` (optimizer state included).

    Raises ``FileNotFoundError(missing)`` when none exists.
    """
    for path in paths:
        if os.path.exists(path):
            maml.optimizer.build(maml.trainable_variables)
            maml.load_weights(path)
            return maml
    raise FileNotFoundError(missing)
