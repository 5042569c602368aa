"""cffi builder (API mode) for ``runpy_oci._sys``: the raw kernel calls that
Python's standard library does not offer.

Every wrapper returns ``-errno`` on failure (or a non-negative result), so the
Python side (``runpy_oci.kernel``) turns failures into ``OSError`` without
reading a thread-local errno after the call.
"""
from cffi import FFI

CDEF = """
int rp_mount(const char *source, const char *target, const char *fstype,
             unsigned long flags, const char *data);
int rp_umount2(const char *target, int flags);
int rp_pivot_root(const char *new_root, const char *put_old);
int rp_setns(int fd, int nstype);
int rp_unshare(int flags);
int rp_sethostname(const char *name, size_t len);
int rp_setrlimit(int resource, unsigned long long soft, unsigned long long hard);
int rp_setdomainname(const char *name, size_t len);
int rp_prctl(int option, unsigned long a2, unsigned long a3,
             unsigned long a4, unsigned long a5);
int rp_openat2(int dirfd, const char *path, unsigned long long flags,
               unsigned long long mode, unsigned long long resolve);
int rp_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     unsigned long long attr_set, unsigned long long attr_clr,
                     unsigned long long propagation);
int rp_capset(unsigned long long effective, unsigned long long permitted,
              unsigned long long inheritable);
int rp_open_tree(int dirfd, const char *path, unsigned int flags);
int rp_fork_into_cgroup(int cgroup_fd, unsigned long long ns_flags);
int rp_bpf_load_device_filter(const void *insns, unsigned int count, char *log, unsigned int log_size);
int rp_bpf_attach_device_filter(int prog_fd, int cgroup_fd);
int rp_seccomp_set_filter(const void *insns, unsigned int count, unsigned int flags);
"""

SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define RP_CLONE_INTO_CGROUP 0x200000000ULL

struct rp_open_how { uint64_t flags, mode, resolve; };
struct rp_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
struct rp_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
             set_tid, set_tid_size, cgroup;
};

/* cffi builds for the limited API, which declares these only for a
   versioned Py_LIMITED_API; they are in the stable ABI since 3.7. */
PyAPI_FUNC(void) PyOS_BeforeFork(void);
PyAPI_FUNC(void) PyOS_AfterFork_Parent(void);
PyAPI_FUNC(void) PyOS_AfterFork_Child(void);

#define RP_RET(expr) do { long _r = (long)(expr); return _r < 0 ? -errno : (int)_r; } while (0)

int rp_mount(const char *source, const char *target, const char *fstype,
             unsigned long flags, const char *data)
{ RP_RET(mount(source, target, fstype, flags, data)); }

int rp_umount2(const char *target, int flags) { RP_RET(umount2(target, flags)); }

int rp_pivot_root(const char *new_root, const char *put_old)
{ RP_RET(syscall(SYS_pivot_root, new_root, put_old)); }

int rp_setns(int fd, int nstype) { RP_RET(setns(fd, nstype)); }

int rp_unshare(int flags) { RP_RET(unshare(flags)); }

int rp_sethostname(const char *name, size_t len) { RP_RET(sethostname(name, len)); }

int rp_setdomainname(const char *name, size_t len) { RP_RET(setdomainname(name, len)); }

int rp_setrlimit(int resource, unsigned long long soft, unsigned long long hard)
{
    struct rlimit lim = { (rlim_t)soft, (rlim_t)hard };
    RP_RET(setrlimit(resource, &lim));
}

int rp_prctl(int option, unsigned long a2, unsigned long a3,
             unsigned long a4, unsigned long a5)
{ RP_RET(prctl(option, a2, a3, a4, a5)); }

int rp_openat2(int dirfd, const char *path, unsigned long long flags,
               unsigned long long mode, unsigned long long resolve)
{
    struct rp_open_how how = { flags, mode, resolve };
    RP_RET(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

int rp_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     unsigned long long attr_set, unsigned long long attr_clr,
                     unsigned long long propagation)
{
    struct rp_mount_attr attr = { attr_set, attr_clr, propagation, 0 };
    RP_RET(syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr));
}

int rp_open_tree(int dirfd, const char *path, unsigned int flags)
{ RP_RET(syscall(SYS_open_tree, dirfd, path, flags)); }

/* capset(2) with 64-bit sets (two 32-bit words each, version 3). */
int rp_capset(unsigned long long effective, unsigned long long permitted,
              unsigned long long inheritable)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
        { (__u32)effective, (__u32)permitted, (__u32)inheritable },
        { (__u32)(effective >> 32), (__u32)(permitted >> 32), (__u32)(inheritable >> 32) },
    };
    RP_RET(syscall(SYS_capset, &hdr, data));
}

/* A cgroup v2 device program (see runpy_oci/cgroups/devicefilter.py); with
   a log buffer, the verifier explains a refusal there. */
int rp_bpf_load_device_filter(const void *insns, unsigned int count, char *log, unsigned int log_size)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = count;
    attr.license = (uint64_t)(uintptr_t)"Apache";
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = log_size;
    attr.log_level = log_size ? 1 : 0;
    RP_RET(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
}

/* Attached beside any program an ancestor has (all must allow), as runc does. */
int rp_bpf_attach_device_filter(int prog_fd, int cgroup_fd)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = cgroup_fd;
    attr.attach_bpf_fd = prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    RP_RET(syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr));
}

/* A seccomp filter program (see runpy_oci/seccomp_bpf.py), as libseccomp's seccomp_load loads one. */
int rp_seccomp_set_filter(const void *insns, unsigned int count, unsigned int flags)
{
    struct sock_fprog prog = { (unsigned short)count, (struct sock_filter *)insns };
    if (count == 0 || count > BPF_MAXINSNS)
        return -EINVAL;
    RP_RET(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog));
}

/* os.fork(), but the child starts in the cgroup2 directory cgroup_fd
   (clone3 with CLONE_INTO_CGROUP): no migration after the fact, which would
   wait for cgroup_threadgroup_rwsem. ns_flags adds CLONE_NEW* flags: the
   child is also born in those new namespaces. Python's at-fork work runs around it
   as in os.fork (under the GIL, which cffi released for the call); glibc's
   fork handlers do not, so only a single-threaded process may call it. */
int rp_fork_into_cgroup(int cgroup_fd, unsigned long long ns_flags)
{
    struct rp_clone_args args = { 0 };
    args.flags = RP_CLONE_INTO_CGROUP | ns_flags;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyOS_BeforeFork();
    long pid = syscall(SYS_clone3, &args, sizeof args);
    int err = errno;
    if (pid == 0)
        PyOS_AfterFork_Child();
    else
        PyOS_AfterFork_Parent();
    PyGILState_Release(gil);
    return pid < 0 ? -err : (int)pid;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("runpy_oci._sys", SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
