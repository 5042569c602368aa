"""mounts, root.readonly, maskedPaths, readonlyPaths, rootfsPropagation."""
from __future__ import annotations

import os
import stat

import pytest

from .harness import base_config, bind_mount, kv, mounts_under, wait_for

pytestmark = pytest.mark.root


def parse_mountinfo(text: str) -> dict[str, dict]:
    """mount point -> {fstype, source, opts (set), super (set), optional (list)};
    the last mount on a mount point wins (it is the visible one)."""
    mounts = {}
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf, rf = left.split(), right.split()
        mounts[lf[4].replace("\\040", " ")] = {
            "root": lf[3],
            "opts": set(lf[5].split(",")),
            "optional": lf[6:],
            "fstype": rf[0],
            "source": rf[1] if len(rf) > 1 else "",
            "super": set(rf[2].split(",")) if len(rf) > 2 else set(),
        }
    return mounts


def container_mounts(runtime, bundle, script_before="") -> dict[str, dict]:
    return parse_mountinfo(runtime.probe(bundle, f"{script_before} cat /proc/self/mountinfo"))


@pytest.mark.parametrize("mp,fstype", [
    ("/", None), ("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"), ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"),
])
def test_default_mounts_present(runtime, bundle, mp, fstype):
    mounts = container_mounts(runtime, bundle)
    assert mp in mounts, f"{mp} is not a mount point: {sorted(mounts)}"
    if fstype:
        assert mounts[mp]["fstype"] == fstype


def test_mount_options_from_runc_spec(runtime, bundle):
    m = container_mounts(runtime, bundle)
    assert {"nosuid", "noexec", "nodev", "ro"} <= m["/sys"]["opts"]
    assert {"nosuid", "noexec", "nodev"} <= m["/dev/shm"]["opts"]
    assert {"nosuid", "noexec", "nodev"} <= m["/dev/mqueue"]["opts"]
    assert {"nosuid", "noexec"} <= m["/dev/pts"]["opts"]
    assert "ptmxmode=666" in m["/dev/pts"]["super"]
    assert "mode=620" in m["/dev/pts"]["super"]
    assert "gid=5" in m["/dev/pts"]["super"]
    assert "nosuid" in m["/dev"]["opts"]
    assert "mode=755" in m["/dev"]["super"]


def test_proc_shows_container_processes(runtime, bundle):
    out = runtime.probe(bundle, "cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.split()[:2] == ["sh", "-c"]


def test_sysfs_read_only(runtime, bundle):
    out = runtime.probe(bundle, "if echo x > /sys/kernel/uevent_helper 2>/dev/null || "
                                "mkdir /sys/oci-probe 2>/dev/null; then echo writable; "
                                "else echo ro; fi; test -d /sys/class/net && echo populated")
    assert out.split() == ["ro", "populated"]


def test_tmpfs_size_and_mode(runtime, bundle):
    bundle.config["mounts"].append({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m", "mode=1770"],
    })
    out = kv(runtime.probe(bundle,
        'echo "mode=$(stat -c %a /scratch)"; '
        'dd if=/dev/zero of=/scratch/small bs=1024 count=512 2>/dev/null && echo "small=ok"; '
        'if dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null; '
        'then echo "big=fits"; else echo "big=ENOSPC"; fi; '
        'grep " /scratch " /proc/self/mountinfo | sed "s/^/mi=/"'))
    assert out["mode"] == "1770"
    assert out["small"] == "ok"
    assert out["big"] == "ENOSPC"
    assert "size=1024k" in out["mi"]


def test_dev_shm_writable(runtime, bundle):
    out = runtime.probe(bundle, "echo data > /dev/shm/f && cat /dev/shm/f")
    assert out == "data\n"


def test_bind_mount_rw(runtime, bundle, host_dir):
    src = host_dir("data")
    (src / "from-host").write_text("hello from host\n")
    bind_mount(bundle.config, src, "/data", "rbind", "rw")
    out = runtime.probe(bundle, "cat /data/from-host; echo written > /data/from-container")
    assert out == "hello from host\n"
    assert (src / "from-container").read_text() == "written\n"


def test_bind_mount_ro(runtime, bundle, host_dir):
    src = host_dir("data")
    (src / "from-host").write_text("hello\n")
    bind_mount(bundle.config, src, "/data", "rbind", "ro")
    out = runtime.probe(bundle, "cat /data/from-host; "
                                "if echo x > /data/new 2>/dev/null; then echo wrote; else echo denied; fi; "
                                "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6")
    lines = out.splitlines()
    assert lines[0] == "hello"
    assert lines[1] == "denied"
    assert "ro" in lines[2].split(",")
    assert sorted(os.listdir(src)) == ["from-host"]
    assert os.access(src, os.W_OK)  # the host's dir stays writable


def test_bind_mount_single_file(runtime, bundle, host_dir):
    src = host_dir("files") / "motd"
    src.write_text("file bind\n")
    bind_mount(bundle.config, src, "/etc/motd", "bind", "ro")
    assert runtime.probe(bundle, "cat /etc/motd") == "file bind\n"


def test_nosuid_nodev_noexec(runtime, bundle):
    for dest, opts in (("/plain", []), ("/locked", ["nosuid", "nodev", "noexec"])):
        bundle.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                                        "options": opts + ["mode=755"]})
    script = (
        "for d in plain locked; do "
        "  cp /bin/busybox /$d/true; "
        "  if /$d/true 2>/dev/null; then echo \"$d.exec=yes\"; else echo \"$d.exec=no\"; fi; "
        "  echo \"$d.opts=$(grep \" /$d \" /proc/self/mountinfo | cut -d' ' -f6)\"; "
        "done"
    )
    out = kv(runtime.probe(bundle, script))
    assert out["plain.exec"] == "yes"
    assert out["locked.exec"] == "no"
    locked = set(out["locked.opts"].split(","))
    plain = set(out["plain.opts"].split(","))
    assert {"nosuid", "nodev", "noexec"} <= locked
    assert not ({"nosuid", "nodev", "noexec"} & plain)


def test_rbind_includes_submounts_bind_does_not(runtime, bundle, host_dir, host_mounts):
    src = host_dir("tree")
    (src / "top").write_text("top\n")
    (src / "sub").mkdir()
    host_mounts("-t", "tmpfs", "tmpfs", target=src / "sub")
    (src / "sub" / "marker").write_text("submount\n")
    bind_mount(bundle.config, src, "/rb", "rbind")
    bind_mount(bundle.config, src, "/b", "bind")
    out = kv(runtime.probe(bundle,
        'echo "rb.top=$(cat /rb/top)"; echo "rb.sub=$(cat /rb/sub/marker 2>/dev/null)"; '
        'echo "b.top=$(cat /b/top)"; echo "b.sub=$(ls -A /b/sub | wc -l)"'))
    assert out["rb.top"] == "top"
    assert out["rb.sub"] == "submount"
    assert out["b.top"] == "top"
    assert out["b.sub"] == "0"


def test_root_readonly(runtime, bundle):
    bundle.config["root"]["readonly"] = True
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["nosuid", "nodev", "mode=1777"]})
    out = kv(runtime.probe(bundle,
        'if touch /probe 2>/dev/null; then echo "root=rw"; else echo "root=ro"; fi; '
        'if echo x > /tmp/f 2>/dev/null; then echo "tmp=rw"; else echo "tmp=ro"; fi; '
        'echo "opts=$(awk \'$5 == "/" {print $6}\' /proc/self/mountinfo)"'))
    assert out["root"] == "ro"
    assert out["tmp"] == "rw"
    assert "ro" in out["opts"].split(",")
    assert not (bundle.rootfs / "probe").exists()


def test_root_writable_when_not_readonly(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    runtime.probe(bundle, "echo x > /probe")
    assert (bundle.rootfs / "probe").read_text() == "x\n"


def test_masked_paths(runtime, bundle):
    (bundle.rootfs / "secret.txt").write_text("s3cret\n")
    (bundle.rootfs / "secretdir").mkdir()
    (bundle.rootfs / "secretdir" / "key").write_text("k\n")
    (bundle.rootfs / "visible.txt").write_text("shown\n")
    bundle.config["linux"]["maskedPaths"] += ["/secret.txt", "/secretdir", "/does/not/exist"]
    out = kv(runtime.probe(bundle,
        'echo "file=$(cat /secret.txt | wc -c)"; echo "dir=$(ls -A /secretdir | wc -l)"; '
        'echo "visible=$(cat /visible.txt)"; echo "kcore=$(cat /proc/kcore | wc -c)"'))
    assert out["file"] == "0"
    assert out["dir"] == "0"
    assert out["visible"] == "shown"
    assert out["kcore"] == "0"
    # masking is done in the container's mount namespace only
    assert (bundle.rootfs / "secret.txt").read_text() == "s3cret\n"


def test_readonly_paths(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    (bundle.rootfs / "data").mkdir()
    (bundle.rootfs / "other").mkdir()
    bundle.config["linux"]["readonlyPaths"] += ["/data"]
    out = kv(runtime.probe(bundle,
        'if touch /data/x 2>/dev/null; then echo "data=rw"; else echo "data=ro"; fi; '
        'if touch /other/x 2>/dev/null; then echo "other=rw"; else echo "other=ro"; fi; '
        'if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then echo "procsys=rw"; '
        'else echo "procsys=ro"; fi'))
    assert out["data"] == "ro"
    assert out["other"] == "rw"
    assert out["procsys"] == "ro"
    assert not (bundle.rootfs / "data" / "x").exists()


SLAVE_WHY = ("`slave` leaves the container's / private (no master: peer); runc makes the "
             "rootfs's parent mount private before pivot_root, crun makes / private")


@pytest.mark.parametrize("propagation,field,visible", [
    ("private", None, False),
    pytest.param("slave", "master:", True, marks=[
        pytest.mark.deviation("runc", SLAVE_WHY), pytest.mark.deviation("crun", SLAVE_WHY)]),
    pytest.param("shared", "shared:", None, marks=[
        pytest.mark.deviation("runc", "`shared` leaves the container's / private (no shared: peer group)")]),
])
def test_rootfs_propagation(runtime, bundle, host_dir, host_mounts, propagation, field, visible):
    """linux.rootfsPropagation shows in the optional fields of / in the
    container's mountinfo; with slave a mount made on the host under the
    rootfs after start reaches the container, with private it does not; the
    runtime's own mounts never flow back to the host."""
    out = host_dir("out")
    bind_mount(bundle.config, out, "/out")
    (bundle.rootfs / "mnt" / "late").mkdir()
    # the bundle sits on a shared mount so that propagation is observable
    host_mounts("--bind", bundle.path, target=bundle.path)
    host_mounts("--make-rshared", target=bundle.path)
    bundle.config["linux"]["rootfsPropagation"] = propagation
    bundle.set_script(
        "awk '$5 == \"/\"' /proc/self/mountinfo > /out/mi; "
        "echo ready > /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; "
        "if [ -e /mnt/late/marker ]; then echo seen > /out/result; else echo unseen > /out/result; fi")
    before = set(mounts_under(bundle.path))
    cid = runtime.new_id(f"prop-{propagation}")
    runtime.check(runtime.create(cid, bundle.path), "create")
    runtime.check(runtime.start(cid), "start")
    wait_for(lambda: (out / "ready").exists(), what="the container to be ready")
    if visible is not None:
        # nothing the runtime mounted for the container appears on the host
        assert set(mounts_under(bundle.path)) == before
    host_mounts("-t", "tmpfs", "tmpfs", target=bundle.rootfs / "mnt" / "late")
    (bundle.rootfs / "mnt" / "late" / "marker").write_text("late\n")
    (out / "go").write_text("go")
    wait_for(lambda: (out / "result").exists() and (out / "result").read_text(),
             what="the container's result")
    runtime.wait_status(cid, "stopped")
    optional = (out / "mi").read_text().split(" - ")[0].split()[6:]
    if field is None:
        assert not [f for f in optional if f.startswith(("shared:", "master:"))], optional
    else:
        assert [f for f in optional if f.startswith(field)], f"no {field} on /: {optional}"
    if visible is not None:
        assert (out / "result").read_text() == ("seen\n" if visible else "unseen\n")


@pytest.mark.parametrize("dest", ["/evil", "/evil/sub/deeper"])
def test_mount_destination_symlink_escape(runtime, bundle, host_dir, dest):
    """rootfs/evil -> /<host dir>: whatever the runtime does (error or a mount
    resolved inside the rootfs), the host directory stays untouched."""
    victim = host_dir("victim")
    (victim / "keep").write_text("precious\n")
    os.symlink(str(victim), bundle.rootfs / "evil")
    bundle.config["root"]["readonly"] = False
    bundle.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                                    "options": ["size=1m"]})
    bundle.set_script(f"echo pwned > {dest}/pwned 2>/dev/null; ls -A {dest}; "
                      f"echo escaped > /evil/escaped 2>/dev/null; true")
    cid = runtime.new_id("symlink")
    cp = runtime.create(cid, bundle.path)
    if cp.returncode == 0:
        assert mounts_under(victim) == []
        runtime.check(runtime.start(cid), "start")
        runtime.wait_status(cid, "stopped")
    else:
        assert cp.stderr.strip()
    assert mounts_under(victim) == []
    assert sorted(os.listdir(victim)) == ["keep"]
    assert (victim / "keep").read_text() == "precious\n"


@pytest.mark.deviation("runc", "runc 1.1.5's tmpcopyup fails on a device node (lchown of a node it did not make)")
def test_tmpcopyup_fills_a_tmpfs_with_what_it_covers(runtime, make_bundle):
    """runc's tmpcopyup (podman adds it to every --tmpfs): the tmpfs starts with a
    copy of the directory under it (modes, owners, links, device nodes), and
    writes go to the tmpfs, not to the image."""
    cfg = base_config()
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "tmpcopyup"]})
    b = make_bundle(cfg)
    etc = b.path / "rootfs" / "etc"
    os.chmod(etc / "passwd", 0o640)
    os.chown(etc / "passwd", 0, 1000)
    os.symlink("passwd", etc / "link")
    os.mknod(etc / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    out = runtime.probe(b, "stat -c '%a %u:%g' /etc/passwd; readlink /etc/link; stat -c '%F %t:%T' /etc/null; "
                           "grep -c '^root:' /etc/passwd; stat -f -c %T /etc; echo new > /etc/written")
    assert out.splitlines() == ["640 0:1000", "passwd", "character special file 1:3", "1", "tmpfs"], out
    assert not (etc / "written").exists()  # the image stayed as it was
