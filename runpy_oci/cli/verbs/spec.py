import os

from runpy_oci import fastjson
from runpy_oci.errors import RuntimeFailure
from runpy_oci.spec.default import default_config, rootless_config


def run(cmd):
    bundle = cmd.options["bundle"]
    if not os.path.isdir(bundle):
        raise RuntimeFailure(f"chdir {bundle}: no such file or directory")
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise RuntimeFailure("File config.json exists. Remove it first")
    config = rootless_config() if cmd.options["rootless"] else default_config()
    with open(path, "w") as f:
        f.write(fastjson.dumps(config, indent=2) + "\n")
