"""Device rules as a cgroup v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE).

v2 has no devices.allow: the kernel asks a BPF program attached to the cgroup,
with ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}``
(access_type = access << 16 | type). The rules are v1's, in the same order;
the last rule that matches decides, as v1's list does once it starts with a
wildcard; a request no rule matches is allowed (a cgroup without rules
allows all). A rule matches when its type is the request's (or "a"), its
numbers are the request's (or any), and it covers every access asked for.
"""
import struct

DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# The few instructions the program needs (linux/bpf_common.h, linux/bpf.h).
LDX_W = 0x61  # dst = *(u32 *)(src + off)
AND32_K = 0x54  # (u32) dst &= imm
RSH32_K = 0x74  # (u32) dst >>= imm
MOV32_X = 0xBC  # (u32) dst = src
MOV64_K = 0xB7  # dst = imm
JNE_K = 0x55  # if dst != imm: pc += off
EXIT = 0x95  # return r0
R0, R1, R2, R3, R4, R5, R6 = range(7)  # r0 result, r1 context; r2 type, r3 access, r4 major, r5 minor


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule_type, major, minor, access, allow):
    """Instructions that return allow/deny if the rule matches, else fall
    through; and whether it always matches (then nothing after it is reached)."""
    checks = []  # (instructions, index of the jump to patch) pairs
    if rule_type != "a":
        checks.append([(JNE_K, R2, 0, TYPES[rule_type])])
    bits = sum(ACCESS[c] for c in set(access))
    if bits != 7:
        checks.append([(MOV32_X, R6, R3, 0), (AND32_K, R6, 0, 7 & ~bits), (JNE_K, R6, 0, 0)])
    if major is not None and major != -1:
        checks.append([(JNE_K, R4, 0, major)])
    if minor is not None and minor != -1:
        checks.append([(JNE_K, R5, 0, minor)])
    body = [step for check in checks for step in check] + [(MOV64_K, R0, 0, 1 if allow else 0), (EXIT, 0, 0, 0)]
    out = []
    for i, (code, dst, src, imm) in enumerate(body):
        off = len(body) - i - 1 if code == JNE_K else 0  # a failed check skips the rest of the block
        out.append(insn(code, dst, src, off, imm))
    return out, not checks


def compile_rules(rules):
    """rules: (type, major, minor, access, allow) in config order -> the program's bytes."""
    program = [
        insn(LDX_W, R2, R1, 0), insn(AND32_K, R2, imm=0xFFFF),
        insn(LDX_W, R3, R1, 0), insn(RSH32_K, R3, imm=16),
        insn(LDX_W, R4, R1, 4), insn(LDX_W, R5, R1, 8),
    ]
    for rule in reversed(rules):  # the last rule that matches decides
        block, always = _rule_block(*rule)
        program += block
        if always:  # the verifier refuses code it can never reach
            return b"".join(program)
    program += [insn(MOV64_K, R0, imm=1), insn(EXIT)]
    return b"".join(program)
