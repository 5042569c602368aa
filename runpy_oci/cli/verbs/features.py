import sys

from runpy_oci import fastjson
from runpy_oci.features import features


def run(cmd):
    sys.stdout.write(fastjson.dumps(features(), indent=4) + "\n")
