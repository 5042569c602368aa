"""cffi builder (API mode) for ``runpy_oci._seccomp``: the few libseccomp
calls the seccomp module needs. A module of its own so that only containers
with a seccomp profile load libseccomp."""
from cffi import FFI

CDEF = """
typedef void *scmp_filter_ctx;
enum scmp_compare { SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT,
                    SCMP_CMP_MASKED_EQ, ... };
enum scmp_filter_attr { SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_CTL_LOG,
                        SCMP_FLTATR_CTL_SSB, SCMP_FLTATR_API_SYSRAWRC, ... };
struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; uint64_t datum_a; uint64_t datum_b; };
#define SCMP_ACT_KILL_PROCESS ...
#define SCMP_ACT_KILL_THREAD ...
#define SCMP_ACT_TRAP ...
#define SCMP_ACT_LOG ...
#define SCMP_ACT_ALLOW ...
#define SCMP_ACT_NOTIFY ...
#define SCMP_ARCH_NATIVE ...
#define __NR_SCMP_ERROR ...
uint32_t rp_act_errno(uint32_t err);
uint32_t rp_act_trace(uint32_t msg);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_load(const scmp_filter_ctx ctx);
int seccomp_notify_fd(const scmp_filter_ctx ctx);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
"""

SOURCE = r"""
#include <seccomp.h>
uint32_t rp_act_errno(uint32_t err) { return SCMP_ACT_ERRNO(err); }
uint32_t rp_act_trace(uint32_t msg) { return SCMP_ACT_TRACE(msg); }
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("runpy_oci._seccomp", SOURCE, libraries=["seccomp"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
