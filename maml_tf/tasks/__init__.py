"""Task distributions yielding meta-batches of episodes."""
from maml_tf.tasks.few_shot import FewShotTasks
from maml_tf.tasks.sinusoid import SinusoidTasks
