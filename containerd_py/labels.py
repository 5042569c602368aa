"""Label validation and field-mask updates shared by every labelled object."""
from . import errors
from .errors import q

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

    Returns the resulting labels (not yet cleaned) and the paths that are not
    about labels, for the caller to apply or refuse by its own rules.
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
    return result, rest


def update(current: dict[str, str], new: dict[str, str], paths: list[str], subject: str) -> dict[str, str]:
    """The labels of an object whose labels are all an update can change (content,
    snapshots, namespaces): every one replaced without a mask, else the mask's."""
    if not paths:
        return clean(new)
    merged, rest = merge(current, new, paths)
    if rest:
        raise errors.InvalidArgument(f"cannot update {q(rest[0])} field on {subject}")
    return clean(merged)
