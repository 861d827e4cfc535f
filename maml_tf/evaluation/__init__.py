"""Evaluating meta-learners: the meta-test protocol (``protocol``) and the studies' measures,
each a function any user can point at their own meta-trained ``MAML`` and task distribution."""
from maml_tf.evaluation.adaptation import adaptation_curve
from maml_tf.evaluation.distribution_shift import image_shifts, out_of_distribution, sinusoid_shifts
from maml_tf.evaluation.gradient_terms import meta_gradient_terms, support_curvature
from maml_tf.evaluation.protocol import mean_ci95, meta_test
from maml_tf.evaluation.robustness import robustness
from maml_tf.evaluation.sample_efficiency import sample_efficiency
from maml_tf.evaluation.settings import evaluate_settings
from maml_tf.evaluation.switching import task_chain, task_switching

__all__ = ["adaptation_curve", "evaluate_settings", "image_shifts", "mean_ci95", "meta_gradient_terms", "meta_test",
           "out_of_distribution", "robustness", "sample_efficiency", "sinusoid_shifts", "support_curvature",
           "task_chain", "task_switching"]
