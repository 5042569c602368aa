"""The rootfs builder's calls, recorded by a fake kernel."""
import json

import pytest

from runpy_oci import kernel as k
from runpy_oci import rootfs, spec
from runpy_oci.cgroups import Cgroup
from runpy_oci.errors import RuntimeFailure
from runpy_oci.mounts import Root
from runpy_oci.spec.default import default_config

from fakes import RecordingSysCalls


@pytest.fixture
def fake():
    f = RecordingSysCalls()
    previous = k.use(f)
    yield f
    k.use(previous)


def load(tmp_path, mounts):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = default_config()
    config["mounts"] = mounts
    (tmp_path / "config.json").write_text(json.dumps(config))
    return spec.load(str(tmp_path))


def test_mounts_in_order_with_flags_and_data(tmp_path, fake):
    s = load(tmp_path, [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    ])
    root = Root(s.root_path)
    rootfs.mount_all(s, root, Cgroup({}))
    root.close()
    proc, dev = fake.mounts()
    # (name, source, target, fstype, flags, data)
    assert proc[1] == "proc" and proc[3] == "proc" and proc[2].startswith("/proc/self/fd/")
    assert dev[1] == "tmpfs" and dev[3] == "tmpfs" and dev[4] == k.MS_NOSUID and dev[5] == "mode=755"
    assert (tmp_path / "rootfs/proc").is_dir() and (tmp_path / "rootfs/dev").is_dir()


def test_bind_with_flags_is_remounted(tmp_path, fake):
    src = tmp_path / "src"
    src.mkdir()
    s = load(tmp_path, [{"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro", "nosuid"]}])
    root = Root(s.root_path)
    rootfs.mount_all(s, root, Cgroup({}))
    root.close()
    first, second = fake.mounts()
    assert first[1] == str(src) and first[4] == k.MS_BIND | k.MS_REC
    assert second[4] & (k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NOSUID) == k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_NOSUID


def test_file_bind_creates_a_file_target(tmp_path, fake):
    src = tmp_path / "hosts"
    src.write_text("x")
    s = load(tmp_path, [{"destination": "/etc/hosts", "type": "bind", "source": str(src), "options": ["bind"]}])
    root = Root(s.root_path)
    rootfs.mount_all(s, root, Cgroup({}))
    root.close()
    assert (tmp_path / "rootfs/etc/hosts").is_file()


def test_missing_bind_source_names_the_mount(tmp_path, fake):
    s = load(tmp_path, [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]},
    ])
    root = Root(s.root_path)
    with pytest.raises(RuntimeFailure, match=r"mounts\[1\]: cannot mount /nonexistent/src on /data"):
        rootfs.mount_all(s, root, Cgroup({}))
    root.close()


def test_failed_mount_names_the_mount(tmp_path):
    fake = RecordingSysCalls(fail={"mount": OSError(22, "Invalid argument")})
    previous = k.use(fake)
    try:
        s = load(tmp_path, [{"destination": "/proc", "type": "proc", "source": "proc"}])
        root = Root(s.root_path)
        with pytest.raises(RuntimeFailure, match=r"mounts\[0\]: cannot mount proc on /proc: Invalid argument"):
            rootfs.mount_all(s, root, Cgroup({}))
        root.close()
    finally:
        k.use(previous)


def test_dev_setup_only_for_a_fresh_dev(tmp_path):
    s = load(tmp_path, [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}])
    assert rootfs.needs_dev_setup(s)
    s = load(tmp_path, [{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}])
    assert not rootfs.needs_dev_setup(s)
    assert not rootfs.needs_dev_setup(load(tmp_path, []))


def without_mount_namespace(tmp_path):
    s = load(tmp_path, [])
    s.linux.namespaces = [ns for ns in s.linux.namespaces if ns.type != "mount"]
    return s


def test_without_a_mount_namespace_the_rootfs_is_a_private_bind_and_the_runtimes_root_untouched(
        tmp_path, fake, monkeypatch):
    s = without_mount_namespace(tmp_path)
    rootfs.prepare_root(s)  # in the init: the runtime made the bind
    assert fake.calls == []
    monkeypatch.setattr(rootfs, "_mountinfo", lambda: iter([(30, 1, str(tmp_path / "rootfs"), [])]))
    assert rootfs.bind_in_runtime_namespace(s) == 30
    real = str(tmp_path / "rootfs")
    assert fake.mounts() == [("mount", real, real, "bind", k.MS_BIND | k.MS_REC, None),
                             ("mount", None, real, None, k.MS_PRIVATE | k.MS_REC, None)]


@pytest.mark.parametrize("stack, released", [
    ([(30, 1), (31, 30)], False),  # something was mounted over the bind since
    ([(30, 1)], True),
    ([(29, 1)], False),  # the bind is gone; 29 is someone else's
    ([], False),
])
def test_release_detaches_the_bind_only_while_it_is_on_top(tmp_path, fake, monkeypatch, stack, released):
    real = str(tmp_path / "rootfs")
    (tmp_path / "rootfs").mkdir()
    mounts = [(mid, parent, real, []) for mid, parent in stack] + [(40, 30, real + "/proc", [])]
    monkeypatch.setattr(rootfs, "_mountinfo", lambda: iter(mounts))
    rootfs.release_bind(real, 30)
    assert fake.calls == ([("umount2", real, k.MNT_DETACH)] if released else [])


def test_mountinfo_escapes_are_undone(tmp_path):
    path = tmp_path / "mountinfo"
    path.write_text("36 35 98:0 /mnt1 /a\\040b\\134040\\011c rw,noatime master:1 - ext3 /dev/root rw\n")
    assert list(rootfs._mountinfo(path)) == [(36, 35, "/a b\\040\tc", ["master:1"])]
