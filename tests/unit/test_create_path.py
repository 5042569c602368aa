"""Which configs create the init straight in its namespaces (one clone3) and
which go through stage 1."""
import json

import pytest

from runpy_oci import kernel as k
from runpy_oci import spec
from runpy_oci.create import _direct_clone_flags
from runpy_oci.spec.default import default_config


def linux_of(tmp_path, namespaces, **linux):
    (tmp_path / "rootfs").mkdir()
    config = default_config()
    config.pop("hostname", None)
    config["linux"]["namespaces"] = namespaces
    config["linux"].update(linux)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return spec.load(str(tmp_path)).linux


def test_runc_spec_namespaces_need_no_stage1(tmp_path):
    linux = linux_of(tmp_path, default_config()["linux"]["namespaces"])
    assert _direct_clone_flags(linux) == (k.CLONE_NEWPID | k.CLONE_NEWNET | k.CLONE_NEWIPC | k.CLONE_NEWUTS
                                          | k.CLONE_NEWNS)


def test_the_cgroup_namespace_is_left_to_the_init(tmp_path):
    linux = linux_of(tmp_path, [{"type": "mount"}, {"type": "cgroup"}, {"type": "time"}])
    assert _direct_clone_flags(linux) == k.CLONE_NEWNS | k.CLONE_NEWTIME


@pytest.mark.parametrize("namespaces, linux", [
    ([{"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}], {}),
    ([{"type": "mount"}, {"type": "user"}],
     {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
      "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    ([{"type": "mount"}, {"type": "time"}], {"timeOffsets": {"monotonic": {"secs": 1}}}),
], ids=["joins", "user", "time-offsets"])
def test_these_take_stage1(tmp_path, namespaces, linux):
    assert _direct_clone_flags(linux_of(tmp_path, namespaces, **linux)) is None
