"""Shared pytest setup: the ``root`` marker skips where the tests cannot have
root (a developer's unprivileged shell); CI runs as root, so nothing skips there."""
import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
