"""Label validation and field-mask updates shared by every labelled object."""
from . import errors

MAX_SIZE = 4096


def clean(labels: dict[str, str]) -> dict[str, str]:
    """Validates labels and drops empty values, which mean "unset" in containerd."""
    for key, value in labels.items():
        if not key:
            raise errors.InvalidArgument("label key must not be empty")
        if len(key) + len(value) > MAX_SIZE:
            raise errors.InvalidArgument(
                f"label key and value greater than maximum size ({MAX_SIZE} bytes), key: {key[:10]}")
    return {k: v for k, v in labels.items() if v}


def merge(current: dict[str, str], new: dict[str, str], paths: list[str]) -> tuple[dict[str, str], list[str]]:
    """Applies the `labels` and `labels.<key>` paths of an update mask.

    Returns the resulting labels and the paths that are not about labels,
    for the caller to apply or refuse by its own rules.
    """
    result = dict(current)
    rest = []
    for path in paths:
        if path == "labels":
            result = dict(new)
        elif path.startswith("labels."):
            key = path[len("labels."):]
            result[key] = new.get(key, "")
        else:
            rest.append(path)
    return clean(result), rest
