"""The paper's networks (Section 5), as plain Keras models."""
from maml_tf.models.networks import conv4, dense_kernel_initializer, fully_connected, mlp
from maml_tf.models.policy import action_distribution, gaussian_mlp_policy
