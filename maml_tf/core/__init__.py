"""The model-agnostic MAML algorithm: no data or environment code here."""
from maml_tf.core.episodes import EpisodeError, make as make_episodes
from maml_tf.core.functional import FunctionalModel
from maml_tf.core.inner import InnerSGD, MetaSGD, PerLayerPerStepLR
from maml_tf.core.maml import MAML
