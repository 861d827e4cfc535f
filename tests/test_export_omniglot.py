"""The committed meta-trained Omniglot 5-way 1-shot model, exported, adapts to new
Omniglot test tasks (real characters, never seen in meta-training) in a fresh process
that has only TensorFlow: the serving story end to end on real data."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_checkpoints import directory_tree

from data_sources import OMNIGLOT_SOURCE
from maml_tf import export, presets
from maml_tf.datasets import omniglot
from maml_tf.experiments import classification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT = os.path.join(ROOT, "checkpoints", "table1_omniglot", "paper", "5way1shot")
TASKS = 20

SERVE = """
import sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
tasks = np.load(sys.argv[2])
hits = []
for sx, sy, qx, qy in zip(tasks["sx"], tasks["sy"], tasks["qx"], tasks["qy"]):
    out = model.signatures["adapt_and_predict"](support_x=sx, support_y=sy, query_x=qx)
    hits.append(np.mean(out["classes"].numpy() == qy))
assert not any(name.startswith("maml_tf") for name in sys.modules)
np.save(sys.argv[3], np.array(hits))
"""


@pytest.mark.slow
def test_exported_omniglot_model_adapts_to_new_characters_in_a_fresh_process(tmp_path):
    if not os.path.isdir(OMNIGLOT_SOURCE):
        pytest.skip(f"needs {OMNIGLOT_SOURCE}")
    preset = presets.classification(presets.OMNIGLOT, "5way1shot")
    data_dir = omniglot.prepare(OMNIGLOT_SOURCE, str(tmp_path / "tfds"))
    run_dir = shutil.copytree(CHECKPOINT, tmp_path / "run")  # never the committed files in place
    maml = classification.load_latest(preset, str(run_dir))
    assert directory_tree(run_dir) == directory_tree(CHECKPOINT)  # reading wrote nothing
    export.save(maml, str(tmp_path / "model"))

    episodes = next(classification.tasks(preset, "test", data_dir).fixed_tasks(TASKS, seed=123, chunk_size=TASKS))
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    np.savez(tmp_path / "tasks.npz", sx=sx, sy=sy, qx=qx, qy=qy)
    subprocess.run([sys.executable, "-c", SERVE, str(tmp_path / "model"), str(tmp_path / "tasks.npz"),
                    str(tmp_path / "hits.npy")], check=True, timeout=600)
    served = np.load(tmp_path / "hits.npy")

    in_process = np.asarray(maml.evaluate_tasks(episodes, steps=preset.eval_inner_steps)["accuracy"])
    assert served.shape == (TASKS,)
    np.testing.assert_allclose(served, in_process[:, preset.eval_inner_steps])
    assert served.mean() > 0.9 > 1.0 / preset.ways  # a new 5-way task from one example per class
