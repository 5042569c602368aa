"""The init of ``docker run --init`` (init.c), built by setup.py beside this file."""
import os

BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine-py-init")
