"""Package list only (everything else is in pyproject.toml).

find_packages() discovers refopt and its subpackages by folder name; refopt.proofs lives in the
top-level proofs/ folder (mapped by package-dir in pyproject.toml), so it is added by name.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["refopt", "refopt.*"]) + ["refopt.proofs"])
