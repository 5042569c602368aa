"""Loading config.json from a bundle into the validated model."""
import os

from runpy_oci import fastjson
from runpy_oci.errors import ConfigError
from runpy_oci.spec.model import Spec


def load(bundle):
    """Parse and validate ``bundle/config.json``; raises ConfigError naming the field."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config.json: no such file in bundle {bundle}") from None
    except OSError as e:
        raise ConfigError(f"config.json: cannot read {path}: {e.strerror}") from None
    try:
        data = fastjson.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    return Spec(data, bundle)
