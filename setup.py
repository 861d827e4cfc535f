"""maml-tf: Model-Agnostic Meta-Learning for TensorFlow / Keras 3.

Exact, tested pins live in requirements/ (installed by `make install`): tf-agents
must be installed with --no-deps, which install_requires cannot express.
"""
from setuptools import find_packages, setup

setup(
    name="maml-tf",
    version="0.1.0",
    description="Model-Agnostic Meta-Learning (Finn et al. 2017) for TensorFlow/Keras 3",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["maml_tf", "maml_tf.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tensorflow-probability>=0.25,<0.26",
        "tensorflow-datasets>=4.9.10",
        "click>=8.1",
        "matplotlib>=3.8",
        "numpy",
    ],
    entry_points={"console_scripts": ["maml=maml_tf.cli:main"]},
    extras_require={"rl": ["gymnasium[mujoco]>=1.4", "mujoco>=3.3"]},
)
