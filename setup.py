"""maml-tf's setuptools entry point; the metadata is in pyproject.toml.

Kept so that `python setup.py ...` and tools that look for setup.py find the package.
"""
from setuptools import setup

setup()
