"""The README's code: the quickstart runs as pasted (in a fresh process), and every
example in the README and docs/ imports names that exist."""
import ast
import glob
import importlib
import importlib.util
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDES = ["README.md"] + sorted(os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
# Run after the quickstart, on the names it defines: what it promises actually happened.
CHECK = """
losses = meta_test(maml, new_tasks)["loss"]["mean"]
assert losses[10] < 0.8 * losses[0], losses  # adapting on 10 points fits new tasks better
assert tuple(predictions.shape) == tuple(query_x[0].shape), predictions.shape
print("quickstart ok")
"""


def python_blocks(guide, section=None):
    """The ```python blocks of a markdown file, or of one of its ``## `` sections."""
    with open(os.path.join(REPO_ROOT, guide), encoding="utf-8") as f:
        text = f.read()
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_quickstart_runs_as_pasted(tmp_path):
    blocks = python_blocks("README.md", "Quickstart")
    assert len(blocks) == 1, "the quickstart is one python block"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", blocks[0] + CHECK], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "quickstart ok" in out.stdout


@pytest.mark.parametrize("guide, index", [(guide, i) for guide in GUIDES for i in range(len(python_blocks(guide)))])
def test_examples_import_names_that_exist(guide, index):
    tree = ast.parse(python_blocks(guide)[index])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"{guide}: from {node.module} import {alias.name}")
