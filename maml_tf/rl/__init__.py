"""MAML for reinforcement learning (Section 5.3): task environments on tf-agents."""


def tf_agents_missing(error):
    """The ImportError for a ``ModuleNotFoundError`` importing tf-agents, which setup.py cannot
    require: its pins break Keras 3, so ``make install`` installs it apart, without them."""
    package = str(error.name).partition(".")[0]
    return ImportError(f"maml_tf.rl needs tf-agents ({package} is missing), installed without its dependencies: "
                       "make install, or pip install --no-deps -r requirements/nodeps.txt.")
