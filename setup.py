"""The one compiled part, the fuzzy shortlist's count (safetycheck/_shortlist.c); the rest is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("safetycheck._shortlist", ["safetycheck/_shortlist.c"])])
