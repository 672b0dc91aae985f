"""advjax's metadata, dependencies and extras live in pyproject.toml; this shim lets
`python setup.py ...` and tools that look for setup.py find them there."""

from setuptools import setup

setup()
