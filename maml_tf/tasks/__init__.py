"""Task distributions yielding meta-batches of episodes."""
from maml_tf.tasks.sinusoid import SinusoidTasks
