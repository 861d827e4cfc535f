"""Evaluating meta-learners: the meta-test protocol (``protocol``) and the studies' measures,
each a function any user can point at their own meta-trained ``MAML`` and task distribution."""
from maml_tf.evaluation.gradient_terms import meta_gradient_terms, support_curvature
from maml_tf.evaluation.protocol import mean_ci95, meta_test
from maml_tf.evaluation.switching import task_chain, task_switching

__all__ = ["mean_ci95", "meta_gradient_terms", "meta_test", "support_curvature", "task_chain",
           "task_switching"]
