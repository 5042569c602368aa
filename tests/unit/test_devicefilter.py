"""The cgroup v2 device program: the instructions the compiler emits are run by
a small interpreter of the few opcodes it uses, on requests a container makes."""
import struct

import pytest

from runpy_oci.cgroups import devicefilter as df
from runpy_oci.cgroups.devices import _default_rules


def run(program, kind, major, minor, access):
    """Interprets the program for one request; returns what it returns (1 allow, 0 deny)."""
    ctx = struct.pack("<III", (sum(df.ACCESS[c] for c in access) << 16) | df.TYPES[kind], major, minor)
    regs = [0] * 11
    pc, steps = 0, 0
    while True:
        code, regbyte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        steps += 1
        assert steps < 10_000
        if code == df.LDX_W:
            assert src == df.R1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == df.AND32_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == df.RSH32_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == df.MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == df.MOV64_K:
            regs[dst] = imm
        elif code == df.JNE_K:
            if regs[dst] != imm:
                pc += off
        elif code == df.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def runc_default(*rules):
    """runc spec's rule list: deny everything, then what is given, then the defaults every container gets."""
    return df.compile_rules([("a", None, None, "rwm", False), *rules, *_default_rules()])


@pytest.mark.parametrize("request_, allowed", [
    (("c", 1, 3, "rw"), True),      # /dev/null
    (("c", 1, 5, "r"), True),       # /dev/zero
    (("c", 136, 7, "rw"), True),    # a pty
    (("b", 8, 0, "m"), True),       # mknod of anything
    (("b", 8, 0, "r"), False),      # but not its use
    (("c", 1, 1, "r"), False),      # /dev/mem
    (("c", 10, 200, "rwm"), True),  # tun
])
def test_deny_all_then_the_defaults(request_, allowed):
    assert run(runc_default(), *request_) == int(allowed)


def test_a_later_rule_overrides_an_earlier_one():
    program = runc_default(("c", 4, None, "rw", True), ("c", 4, 2, "w", False))
    assert run(program, "c", 4, 1, "rw") == 1
    assert run(program, "c", 4, 2, "r") == 1   # the deny covers writes only: the allow of 4:* still matches
    assert run(program, "c", 4, 2, "w") == 0


def test_an_allow_must_cover_every_access_asked_for():
    program = runc_default(("b", 7, 0, "r", True))
    assert run(program, "b", 7, 0, "r") == 1
    assert run(program, "b", 7, 0, "rw") == 0


def test_no_rules_allow_everything_and_nothing_unreachable_is_emitted():
    assert run(df.compile_rules([]), "b", 8, 0, "rwm") == 1
    program = df.compile_rules([("a", None, None, "rwm", True), ("a", None, None, "rwm", False)])
    assert len(program) == 6 * 8 + 2 * 8  # the prologue and the last rule's return: nothing after it
