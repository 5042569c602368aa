"""LocalHost: what engine.oci learns from this machine (no root needed)."""
import os

import pytest

from engine.errors import System
from engine.oci.host import LocalHost, _kernel_version


@pytest.fixture(scope="module")
def host():
    return LocalHost()


def test_kernel_version_parse():
    assert _kernel_version("6.18.44-fc-v1300") == (6, 18)
    assert _kernel_version("5.4.0-rc1") == (5, 4) and _kernel_version("4") == (4, 0)


def test_facts(host):
    assert host.arch in ("amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64", "mips64")
    assert host.ncpu == os.cpu_count() and host.online_cpus[0].isdigit()
    assert host.cgroup_version in (1, 2)
    assert host.sysctl_exists("kernel.hostname") and not host.sysctl_exists("kernel.no_such_thing")


def test_rootfs_files_resolve_symlinks_inside_the_rootfs(host, tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc" / "passwd").symlink_to("/real/passwd")   # absolute: inside the rootfs
    (tmp_path / "etc" / "group").symlink_to("../../../../../../etc/group")  # cannot climb out
    assert host.read_rootfs_file(str(tmp_path), "/etc/passwd") == b"root:x:0:0::/root:/bin/sh\n"
    assert host.read_rootfs_file(str(tmp_path), "/etc/group") is None
    assert host.read_rootfs_file(str(tmp_path), "/etc/shadow") is None


def test_rootfs_files_other_than_regular_ones_count_as_missing(host, tmp_path):
    """A container may put a FIFO or a device where its /etc/passwd would be: reading it must not hold the engine."""
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "passwd")
    (tmp_path / "etc" / "group").symlink_to("/dev/zero")  # resolved inside the rootfs: /dev/zero is not there
    os.symlink("/dev/zero", tmp_path / "dev")
    assert host.read_rootfs_file(str(tmp_path), "/etc/passwd") is None
    assert host.read_rootfs_file(str(tmp_path), "/etc/group") is None
    assert host.read_rootfs_file(str(tmp_path), "/etc") is None
    assert host.read_rootfs_file("/", "/dev/zero") is None


def test_device_from_path(host, tmp_path):
    (null,) = host.devices_from_path("/dev/null", "/dev/mynull", "r")
    assert (null.path, null.type, null.major, null.minor, null.permissions) == ("/dev/mynull", "c", 1, 3, "r")
    assert null.file_mode == os.stat("/dev/null").st_mode & 0o7777
    with pytest.raises(System) as info:
        host.devices_from_path("/dev/nonexist", "/dev/x", "rwm")
    assert str(info.value) == ('error gathering device information while adding custom device "/dev/nonexist": '
                               "No such file or directory")
    (tmp_path / "plain").write_text("")
    with pytest.raises(System, match="not a device node"):
        host.devices_from_path(str(tmp_path / "plain"), "/dev/x", "rwm")


def test_a_directory_of_devices_maps_each_node(host):
    found = host.devices_from_path("/dev", "/hostdev", "rwm")
    assert any(d.path == "/hostdev/null" for d in found)
    assert all(d.path.startswith("/hostdev/") and d.type in "cb" for d in found)


def test_all_devices_skips_pts_and_console(host):
    paths = [d.path for d in host.all_devices()]
    assert "/dev/null" in paths and "/dev/console" not in paths
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/")) for p in paths)


def test_mount_of_a_path(host, tmp_path):
    assert host.mount_of("/proc/self/status")[0] == "/proc"
    point, optional = host.mount_of(str(tmp_path / "not" / "made" / "yet"))
    assert str(tmp_path).startswith(point.rstrip("/") + "/") or point == "/"
    assert all(":" in field for field in optional.split())
