"""An exec loads the container's seccomp filter as BPF generated once per
config.json (runpy_oci.seccomp_bpf.cached_program), and that BPF filters as the
filter libseccomp loads itself does."""
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
def container(tmp_path):
    """(state directory, config.json path) of a container."""
    state, config = tmp_path / "state", tmp_path / "config.json"
    state.mkdir()
    config.write_text('{"ociVersion": "1.0.2"}')
    return str(state), str(config)


def test_the_first_exec_generates_and_keeps_the_program(container):
    state, config = container
    program = seccomp_bpf.cached_program(profile(), state, config)
    assert program.code == seccomp.Filter(profile()).export()
    assert sorted(os.listdir(state)) == [seccomp_bpf.CACHE_FILE]


def test_later_execs_skip_the_generation(container, monkeypatch):
    state, config = container
    first = seccomp_bpf.cached_program(profile(), state, config)
    monkeypatch.setattr(seccomp, "Filter", None)  # a generation would fail now
    assert seccomp_bpf.cached_program(profile(), state, config).code == first.code


def test_a_changed_config_json_is_generated_again(container):
    state, config = container
    seccomp_bpf.cached_program(profile(), state, config)
    with open(config, "w") as f:
        f.write('{"ociVersion": "1.0.2", "changed": true}')
    allow_all = profile({"defaultAction": "SCMP_ACT_ALLOW"})
    assert seccomp_bpf.cached_program(allow_all, state, config).code == seccomp.Filter(allow_all).export()


def test_a_state_directory_that_takes_no_file_still_gives_the_program(container):
    state, config = container
    program = seccomp_bpf.cached_program(profile(), os.path.join(state, "missing"), config)
    assert program.code == seccomp.Filter(profile()).export()
    assert os.listdir(state) == []


def test_the_program_filters_as_libseccomp_loads_it(container, tmp_path):
    """In a child with no_new_privs (so no privilege is needed to load)."""
    program = seccomp_bpf.cached_program(profile(), *container)
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


def test_a_kept_program_needs_no_libseccomp(container):
    """What makes a later exec cheap: libseccomp is not even loaded."""
    import subprocess
    import sys

    state, config = container
    seccomp_bpf.cached_program(profile(), state, config)
    script = ("import sys; from runpy_oci import seccomp_bpf; from runpy_oci.spec.fields import Fields; "
              "from runpy_oci.spec.seccomp import Seccomp; "
              f"seccomp_bpf.cached_program(Seccomp(Fields({DENY_MKDIR!r}, 'linux.seccomp')), {state!r}, {config!r}); "
              "print('runpy_oci._seccomp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_kept_program_is_for_root_alone(container):
    """It holds config.json, whose environment may carry secrets."""
    state, config = container
    seccomp_bpf.cached_program(profile(), state, config)
    assert os.stat(os.path.join(state, seccomp_bpf.CACHE_FILE)).st_mode & 0o777 == 0o600
