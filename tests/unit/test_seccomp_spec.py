"""linux.seccomp validation names the JSON path; features reports the same tables."""
import pytest

from runpy_oci.errors import ConfigError
from runpy_oci.features import features
from runpy_oci.spec import seccomp as spec_seccomp
from runpy_oci.spec.fields import Fields
from runpy_oci.spec.seccomp import Seccomp


def parse(data):
    return Seccomp(Fields(data, "linux.seccomp"))


@pytest.mark.parametrize("data,message", [
    ({}, "linux.seccomp.defaultAction: required field is missing"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]},
     "linux.seccomp.architectures[0]: unknown architecture 'x86_64'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]},
     "linux.seccomp.flags[0]: unknown seccomp flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "run/agent.sock"},
     "linux.seccomp.listenerPath: must be an absolute path"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: must name at least one syscall"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: 6 is above the maximum 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                                      "errnoRet": -1}]},
     "linux.seccomp.syscalls[0].errnoRet: -1 is below the minimum 0"),
])
def test_validation_names_the_field(data, message):
    with pytest.raises(ConfigError) as e:
        parse(data)
    assert str(e.value).startswith(message)


def test_features_report_the_validation_tables():
    sc = features()["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert sc["actions"] == list(spec_seccomp.ACTIONS)
    assert sc["operators"] == list(spec_seccomp.OPERATORS)
    assert sc["archs"] == list(spec_seccomp.ARCHES)


def test_filter_compiles_every_table_entry():
    """Each action, operator and architecture the validation accepts maps onto libseccomp."""
    from runpy_oci.seccomp import Filter

    names = ["getpid", "getppid", "getuid", "getgid", "geteuid", "getegid", "gettid", "getpgrp"]
    rules = [{"names": [name], "action": action, "args": [{"index": 0, "value": 1, "op": op}]}
             for name, action, op in zip(names, spec_seccomp.ACTIONS, spec_seccomp.OPERATORS * 2)
             if action != "SCMP_ACT_ALLOW"]
    Filter(parse({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                  "flags": list(spec_seccomp.FLAGS), "syscalls": rules}))
