"""config.json validation: every error names the JSON path of the bad field."""
import copy
import json

import pytest

from runpy_oci import spec
from runpy_oci.errors import ConfigError
from runpy_oci.spec.default import default_config, rootless_config


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def write(bundle, config):
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def test_default_config_is_valid(bundle):
    s = spec.load(write(bundle, default_config()))
    assert s.process.args == ["sh"]
    assert s.root_path == str(bundle / "rootfs")
    assert [n.type for n in s.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert s.process.rlimits[0].type == "RLIMIT_NOFILE"


def test_rootless_config_is_valid(bundle):
    s = spec.load(write(bundle, rootless_config()))
    assert s.linux.namespace("user") is not None
    assert s.linux.uid_mappings[0].size == 1


def mutate(path, value):
    config = default_config()
    node = config
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return config


DELETE = object()


@pytest.mark.parametrize("path,value,message", [
    ("process.args", DELETE, "process.args: required field is missing"),
    ("process.args", [], "process.args: must name at least"),
    ("process.args", ["sh", 3], "process.args[1]: expected string, got integer"),
    ("process.user.uid", "0", "process.user.uid: expected integer, got string"),
    ("process.user.uid", -1, "process.user.uid: -1 is below the minimum 0"),
    ("process.cwd", "relative", "process.cwd: must be an absolute path"),
    ("process.terminal", "yes", "process.terminal: expected boolean, got string"),
    ("process.rlimits", [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}], "process.rlimits[0].type: unknown rlimit"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}], "process.rlimits[0]: soft limit 2 exceeds hard limit 1"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1 << 64, "soft": 1}],
     "process.rlimits[0].hard: 18446744073709551616 is above the maximum 18446744073709551615"),
    ("ociVersion", "2.0.0", "ociVersion: unsupported version '2.0.0'"),
    ("ociVersion", DELETE, "ociVersion: required field is missing"),
    ("root.path", "missing", "root.path: "),
    ("linux.namespaces.1.type", "foo", "linux.namespaces[1].type: unknown namespace type 'foo'"),
    ("linux.namespaces.1", {"type": "pid"}, "linux.namespaces[1].type: namespace 'pid' listed twice"),
    ("mounts.0.destination", DELETE, "mounts[0].destination: required field is missing"),
    ("mounts.0.options", "ro", "mounts[0].options: expected array, got string"),
    ("linux.rootfsPropagation", "sideways", "linux.rootfsPropagation: unknown propagation"),
    ("linux.devices", [{"type": "x", "path": "/dev/x", "major": 1, "minor": 1}], "linux.devices[0].type: unknown device type"),
    ("linux.sysctl", {"net.ipv4.ip_forward": 1}, "linux.sysctl.net.ipv4.ip_forward: expected string, got integer"),
    ("hooks", {"prestart": [{"path": "rel"}]}, "hooks.prestart[0].path: must be an absolute path"),
    ("hostname", 5, "hostname: expected string, got integer"),
    ("linux.timeOffsets", {"monotonic": None}, "linux.timeOffsets.monotonic: required field is missing"),
])
def test_invalid_fields_are_named(bundle, path, value, message):
    with pytest.raises(ConfigError) as e:
        spec.load(write(bundle, mutate(path, value)))
    assert str(e.value).startswith(message), str(e.value)


def test_hostname_needs_uts_namespace(bundle):
    config = default_config()
    config["linux"]["namespaces"] = [{"type": "mount"}]
    with pytest.raises(ConfigError, match="hostname: setting it needs a uts namespace in linux.namespaces"):
        spec.load(write(bundle, config))


def test_no_mount_namespace_is_a_valid_config(bundle):
    config = default_config()
    config["linux"]["namespaces"] = [{"type": "pid"}, {"type": "uts"}]
    assert spec.load(write(bundle, config)).linux.namespace("mount") is None


def test_hostname_may_go_to_a_uts_namespace_joined_by_path(bundle):
    config = default_config()
    config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "uts", "path": "/proc/1/ns/uts"}]
    assert spec.load(write(bundle, config)).hostname == config["hostname"]


@pytest.mark.parametrize("target", ["rootfs", "{bundle}/rootfs", "/"])
def test_a_symlinked_rootfs_is_refused(bundle, target):
    (bundle / "link").symlink_to(target.format(bundle=bundle))
    config = default_config()
    config["root"]["path"] = "link"
    with pytest.raises(ConfigError, match="^root.path: invalid rootfs: not an absolute path, or a symlink: link"):
        spec.load(write(bundle, config))


def test_a_symlink_on_the_way_to_the_rootfs_is_refused(bundle):
    (bundle / "real").mkdir()
    (bundle / "real" / "rootfs").mkdir()
    (bundle / "via").symlink_to("real")
    config = default_config()
    config["root"]["path"] = str(bundle / "via" / "rootfs")
    with pytest.raises(ConfigError, match="invalid rootfs: not an absolute path, or a symlink"):
        spec.load(write(bundle, config))


def test_a_bundle_reached_through_a_symlink_is_fine(bundle, tmp_path_factory):
    link = tmp_path_factory.mktemp("elsewhere") / "bundle-link"
    link.symlink_to(bundle)
    write(bundle, default_config())
    assert spec.load(str(link)).root_path == str(link / "rootfs")


def test_bad_json_is_reported(bundle):
    (bundle / "config.json").write_text('{"ociVersion": "1.0.0",')
    with pytest.raises(ConfigError, match="config.json: invalid JSON"):
        spec.load(str(bundle))


def test_missing_config_is_reported(bundle):
    with pytest.raises(ConfigError, match="config.json: no such file"):
        spec.load(str(bundle))


def test_boolean_is_not_an_integer(bundle):
    with pytest.raises(ConfigError, match="process.user.gid: expected integer, got boolean"):
        spec.load(write(bundle, mutate("process.user.gid", True)))


def test_default_config_is_not_shared_between_calls():
    a = default_config()
    b = copy.deepcopy(a)
    a["mounts"][0]["destination"] = "/elsewhere"
    assert default_config() == b


@pytest.mark.parametrize("section,key,minimum", [("cpu", "shares", 2), ("blockIO", "weight", 10)])
def test_a_zero_cpu_shares_or_blkio_weight_is_unset_as_in_runc(bundle, section, key, minimum):
    """dockerd writes both always, 0 without --cpu-shares or --blkio-weight."""
    config = default_config()
    config["linux"]["resources"] = {section: {key: 0}}
    loaded = spec.load(write(bundle, config)).linux.resources
    assert getattr(loaded.cpu if section == "cpu" else loaded.block_io, key) is None
    config["linux"]["resources"] = {section: {key: 1}}
    with pytest.raises(ConfigError, match=f"linux.resources.{section}.{key}: 1 is below the minimum {minimum}"):
        spec.load(write(bundle, config))
