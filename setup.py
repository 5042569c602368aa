"""Builds the cffi extension (API mode) at install time; all metadata is in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["runpy_oci/_build_sys.py:ffibuilder", "runpy_oci/_build_seccomp.py:ffibuilder"])
