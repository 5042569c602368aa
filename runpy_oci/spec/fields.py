"""Typed reading of JSON objects with errors that name the JSON path.

``Fields(data, "process.user").int("uid")`` returns the value or raises
``ConfigError("process.user.uid: expected integer, got string")``.
"""
from runpy_oci.errors import ConfigError

_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}

_MISSING = object()


def type_name(value):
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def join(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Fields:
    """A JSON object under a path; typed getters that raise ConfigError."""

    __slots__ = ("data", "path")

    def __init__(self, data, path=""):
        if not isinstance(data, dict):
            raise ConfigError(f"{path or '(root)'}: expected object, got {type_name(data)}")
        self.data = data
        self.path = path

    def where(self, key):
        return join(self.path, key)

    def has(self, key):
        return self.data.get(key) is not None

    def _get(self, key, kinds, expected, required, default):
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise ConfigError(f"{self.where(key)}: required field is missing")
            return default
        # bool is an int subclass in Python; JSON keeps them apart.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ConfigError(f"{self.where(key)}: expected {expected}, got {type_name(value)}")
        return value

    def str(self, key, required=False, default=None):
        return self._get(key, (str,), "string", required, default)

    def bool(self, key, default=False):
        return self._get(key, (bool,), "boolean", False, default)

    def int(self, key, required=False, default=None, minimum=None, maximum=None):
        value = self._get(key, (int,), "integer", required, default)
        if value is not None and value is not default:
            if minimum is not None and value < minimum:
                raise ConfigError(f"{self.where(key)}: {value} is below the minimum {minimum}")
            if maximum is not None and value > maximum:
                raise ConfigError(f"{self.where(key)}: {value} is above the maximum {maximum}")
        return value

    def uint32(self, key, required=False, default=None):
        return self.int(key, required, default, 0, 0xFFFFFFFF)

    def obj(self, key, required=False):
        """The child object as Fields, or None when absent and optional."""
        value = self._get(key, (dict,), "object", required, None)
        return None if value is None else Fields(value, self.where(key))

    def list(self, key, required=False):
        return self._get(key, (list,), "array", required, [])

    def str_list(self, key, required=False):
        items = self.list(key, required)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ConfigError(f"{join(self.where(key), i)}: expected string, got {type_name(item)}")
        return list(items)

    def int_list(self, key):
        items = self.list(key)
        for i, item in enumerate(items):
            if not isinstance(item, int) or isinstance(item, bool):
                raise ConfigError(f"{join(self.where(key), i)}: expected integer, got {type_name(item)}")
        return list(items)

    def obj_list(self, key, required=False):
        """Each element as Fields with its indexed path."""
        base = self.where(key)
        return [Fields(item, join(base, i)) for i, item in enumerate(self.list(key, required))]

    def str_map(self, key):
        value = self._get(key, (dict,), "object", False, {})
        for k, v in value.items():
            if not isinstance(v, str):
                raise ConfigError(f"{self.where(key)}.{k}: expected string, got {type_name(v)}")
        return dict(value)
