"""A create or an exec loads the seccomp filter as BPF generated once per
profile and kept under --root (runpy_oci.seccomp_bpf.cached_program), and that
BPF filters as the filter libseccomp loads itself does."""
import errno
import os

import pytest

from runpy_oci import kernel as k
from runpy_oci import seccomp, seccomp_bpf
from runpy_oci.spec.fields import Fields
from runpy_oci.spec.seccomp import Seccomp

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]}


def profile(data=DENY_MKDIR):
    return Seccomp(Fields(data, "linux.seccomp"))


@pytest.fixture
def cache(tmp_path):
    """The cache directory, not made yet (the first generation makes it)."""
    return str(tmp_path / seccomp_bpf.CACHE_DIR)


def test_the_first_use_generates_and_keeps_the_program(cache):
    program = seccomp_bpf.cached_program(profile(), cache)
    assert program.code == seccomp.Filter(profile()).export()
    assert len(os.listdir(cache)) == 1


def test_later_uses_skip_the_generation(cache, monkeypatch):
    first = seccomp_bpf.cached_program(profile(), cache)
    monkeypatch.setattr(seccomp, "Filter", None)  # a generation would fail now
    assert seccomp_bpf.cached_program(profile(), cache).code == first.code


def test_another_profile_is_generated_and_kept_beside(cache):
    seccomp_bpf.cached_program(profile(), cache)
    deny_with_eperm = profile({**DENY_MKDIR, "syscalls": [{**DENY_MKDIR["syscalls"][0], "errnoRet": errno.EPERM}]})
    assert seccomp_bpf.cached_program(deny_with_eperm, cache).code == seccomp.Filter(deny_with_eperm).export()
    assert len(os.listdir(cache)) == 2
    assert seccomp_bpf.cached_program(profile(), cache).code == seccomp.Filter(profile()).export()


def test_a_cache_that_cannot_be_made_still_gives_the_program(tmp_path):
    (tmp_path / "file").write_text("")
    program = seccomp_bpf.cached_program(profile(), str(tmp_path / "file" / seccomp_bpf.CACHE_DIR))
    assert program.code == seccomp.Filter(profile()).export()
    assert os.listdir(tmp_path) == ["file"]


def test_the_program_filters_as_libseccomp_loads_it(cache, tmp_path):
    """In a child with no_new_privs (so no privilege is needed to load)."""
    program = seccomp_bpf.cached_program(profile(), cache)
    pid = os.fork()
    if pid == 0:
        try:
            k.get().prctl(k.PR_SET_NO_NEW_PRIVS, 1)
            program.load()
            os.mkdir(tmp_path / "denied")
            os._exit(0)
        except PermissionError:
            os._exit(13)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 13
    assert not (tmp_path / "denied").exists()


def test_a_kept_program_needs_no_libseccomp(cache):
    """What makes a later create or exec cheap: libseccomp is not even loaded."""
    import subprocess
    import sys

    seccomp_bpf.cached_program(profile(), cache)
    script = ("import sys; from runpy_oci import seccomp_bpf; from runpy_oci.spec.fields import Fields; "
              "from runpy_oci.spec.seccomp import Seccomp; "
              f"seccomp_bpf.cached_program(Seccomp(Fields({DENY_MKDIR!r}, 'linux.seccomp')), {cache!r}); "
              "print('runpy_oci._seccomp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_kept_program_is_for_root_alone(cache):
    seccomp_bpf.cached_program(profile(), cache)
    assert os.stat(cache).st_mode & 0o777 == 0o700
    for name in os.listdir(cache):
        assert os.stat(os.path.join(cache, name)).st_mode & 0o777 == 0o600


def test_list_passes_over_the_cache(tmp_path):
    from runpy_oci import state

    (tmp_path / "c1").mkdir()
    seccomp_bpf.cached_program(profile(), str(tmp_path / seccomp_bpf.CACHE_DIR))
    assert state.container_ids(str(tmp_path)) == ["c1"]
