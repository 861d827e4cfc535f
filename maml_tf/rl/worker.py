"""A sampling worker process's entry point (:mod:`maml_tf.rl.envs.processes`), kept apart
from that module so that the worker starts TensorFlow, which tf-agents imports, as quietly
as its parent did, before anything else imports it."""
import signal

import maml_tf


def start(connection, name, batch_size, kwargs, tf_log_requested):
    """Run the worker loop of ``processes`` in this new process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which closes the workers
    maml_tf.import_tensorflow_quietly(user_asked=tf_log_requested)
    from maml_tf.rl.envs import processes
    processes.work(connection, name, batch_size, kwargs)
