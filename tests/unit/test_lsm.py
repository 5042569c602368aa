"""AppArmor/SELinux fields: ignored with a debug log where the host has no
such LSM, refused by name where it has one (runpy-oci applies neither)."""
import pytest

from runpy_oci import lsm
from runpy_oci import log
from runpy_oci.errors import RuntimeFailure
from runpy_oci.spec.fields import Fields
from runpy_oci.spec.model import Process

LABELS = {"apparmorProfile": "runpy-test", "selinuxLabel": "system_u:system_r:container_t:s0"}


def _process(**fields):
    return Process(Fields({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, **fields}, "process"))


@pytest.fixture
def host(monkeypatch):
    """Which LSMs the host has: host(apparmor=..., selinux=...)."""
    def make(apparmor=False, selinux=False):
        monkeypatch.setattr(lsm, "apparmor_enabled", lambda: apparmor)
        monkeypatch.setattr(lsm, "selinux_enabled", lambda: selinux)
    return make


@pytest.fixture
def debug_log(tmp_path):
    path = tmp_path / "log"
    log.configure({"log": str(path), "log_format": "text", "debug": True})
    yield path
    log.configure({"log": "", "log_format": "text", "debug": False})


def test_without_the_lsms_every_field_is_ignored_and_said_so(host, debug_log):
    host()
    lsm.check(_process(**LABELS), "system_u:object_r:container_file_t:s0")
    text = debug_log.read_text()
    assert text.count("level=debug") == 3
    for field in ("process.apparmorProfile 'runpy-test' ignored: the host has no AppArmor",
                  "process.selinuxLabel", "linux.mountLabel"):
        assert field in text


@pytest.mark.parametrize("apparmor,selinux,fields,mount_label,refused", [
    (True, False, {"apparmorProfile": "p"}, "", "process.apparmorProfile 'p': AppArmor is enabled on this host"),
    (False, True, {"selinuxLabel": "l"}, "", "process.selinuxLabel 'l': SELinux is enabled on this host"),
    (False, True, {}, "m", "linux.mountLabel 'm': SELinux is enabled on this host"),
])
def test_with_the_lsm_the_field_is_refused(host, apparmor, selinux, fields, mount_label, refused):
    host(apparmor=apparmor, selinux=selinux)
    with pytest.raises(RuntimeFailure, match=refused):
        lsm.check(_process(**fields), mount_label)


def test_an_lsm_only_matters_for_its_own_fields(host, debug_log):
    host(apparmor=True)
    lsm.check(_process(selinuxLabel="l"), "m")  # SELinux fields on an AppArmor host: ignored
    assert debug_log.read_text().count("level=debug") == 2
