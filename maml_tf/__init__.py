"""maml-tf: Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017) for TensorFlow/Keras 3."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep CUDA-probe noise off CPU machines

from maml_tf.core import MAML, EpisodeError, FunctionalModel, InnerSGD, MetaSGD, PerLayerPerStepLR, make_episodes  # noqa: E402

__version__ = "0.1.0"
