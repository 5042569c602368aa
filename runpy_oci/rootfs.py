"""Building the container's filesystem view inside its new mount namespace:
propagation, the config's mounts in order, /dev, pivot_root, and the
after-pivot touches (masked and read-only paths, read-only root)."""
import os
import stat

from runpy_oci import devices
from runpy_oci import kernel as k
from runpy_oci.cgroups import unescape_mountinfo
from runpy_oci.errors import RuntimeFailure
from runpy_oci.mounts import PROPAGATION_OPTIONS, MountOptions, fd_path, kept_flags


def _mountinfo(path="/proc/self/mountinfo"):
    """(mount id, parent id, mount point, optional fields) of each mount we see."""
    with open(path) as f:
        for line in f:
            fields = line.split(" - ", 1)[0].split(" ")
            yield int(fields[0]), int(fields[1]), unescape_mountinfo(fields[4]), fields[6:]


def _parent_mount(path):
    """(mount point, is shared) of the mount that contains ``path``."""
    best, shared = "/", False
    for _, _, mp, optional in _mountinfo():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, shared = mp, any(opt.startswith("shared:") for opt in optional)
    return best, shared


def _top_mount_at(path):
    """The id of the mount on top of the stack at ``path``, or None."""
    stack = {mid: parent for mid, parent, mp, _ in _mountinfo() if mp == path}
    tops = set(stack) - set(stack.values())
    return tops.pop() if len(tops) == 1 else None


def has_own_mount_namespace(spec):
    return spec.linux.namespace("mount") is not None


def bind_in_runtime_namespace(spec):
    """A container without a mount namespace of its own has its mounts made
    in the runtime's, as runc and crun make them: here, on a bind of the
    rootfs onto itself, private so that nothing mounted in it spreads to
    other namespaces, and detached with everything below it when the
    container is removed (``release_bind``). Returns the bind's mount id."""
    sys = k.get()
    real = os.path.realpath(spec.root_path)
    sys.mount(real, real, "bind", k.MS_BIND | k.MS_REC)
    try:
        sys.mount(None, real, None, k.MS_PRIVATE | k.MS_REC)
    except BaseException:
        sys.umount2(real, k.MNT_DETACH)
        raise
    return _top_mount_at(real)


def release_bind(root_path, mount_id):
    """Detach what ``bind_in_runtime_namespace`` made, if it is still on top
    at the rootfs: a mount made over it later, or a namespace it is not in,
    is left alone."""
    real = os.path.realpath(root_path)
    if mount_id is not None and _top_mount_at(real) == mount_id:
        k.get().umount2(real, k.MNT_DETACH)


def root_propagation(spec):
    return PROPAGATION_OPTIONS.get(spec.linux.rootfs_propagation, k.MS_SLAVE | k.MS_REC)


def prepare_root(spec):
    """Cut propagation to the host (rslave unless the config says otherwise),
    then bind the rootfs onto itself so it is a mount point pivot_root can use.

    A shared parent mount is made a slave: our mounts must not flow back to
    the host (and pivot_root refuses a shared parent), yet a bind of a slave
    stays a slave of the same master, so host mounts keep reaching a
    container with slave propagation. A private one gets its propagation
    after the pivot. A recursive change to anything but shared leaves no
    mount shared, so mountinfo is read only when one may be.

    Without a mount namespace of its own the runtime has made the bind
    (``bind_in_runtime_namespace``), and "/" is the runtime's to leave be."""
    if not has_own_mount_namespace(spec):
        return
    sys = k.get()
    propagation = root_propagation(spec)
    sys.mount(None, "/", None, propagation)
    if not propagation & k.MS_REC or propagation & k.MS_SHARED:
        parent, shared = _parent_mount(os.path.dirname(spec.root_path))
        if shared:
            sys.mount(None, parent, None, k.MS_SLAVE)
    sys.mount(spec.root_path, spec.root_path, "bind", k.MS_BIND | k.MS_REC)


def mount_all(spec, root, cgroup):
    """The config's mounts, in order, each onto a target resolved inside the rootfs."""
    for i, m in enumerate(spec.mounts):
        try:
            _mount_one(m, root, cgroup)
        except OSError as e:
            raise RuntimeFailure(
                f"mounts[{i}]: cannot mount {m.source or m.type!s} on {m.destination}: {e.strerror}"
            ) from None


def copy_tree(src, dst):
    """tmpcopyup: what the directory fd ``src`` holds, into the directory fd
    ``dst`` (the tmpfs now over it), with owners, modes and times; symlinks as
    links, device nodes and FIFOs as nodes. Every step is relative to a
    directory fd and never follows a link: image content cannot send the
    copy anywhere else."""
    with os.scandir(src) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            sub_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
            try:
                copy_tree(sub_src, sub_dst)
            finally:
                os.close(sub_src)
                os.close(sub_dst)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(name, src, dst, st.st_size)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(name, stat.S_IFMT(st.st_mode) | mode, st.st_rdev, dir_fd=dst)
        else:
            continue  # sockets: nothing to copy
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, mode, dir_fd=dst)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(name, src, dst, size):
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst)
        try:
            while size > 0:
                sent = os.sendfile(fout, fin, None, size)
                if sent == 0:
                    break
                size -= sent
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _exists(root, inner):
    try:
        os.close(root.open(inner))
    except FileNotFoundError:
        return False
    return True


def _mount_one(m, root, cgroup):
    sys = k.get()
    opts = MountOptions(m.options)
    if m.type == "cgroup" or m.type == "cgroup2":
        return _mount_cgroups(m, opts, root, cgroup)
    bind = opts.is_bind or m.type == "bind"
    if bind:
        source = m.source if m.source.startswith("/") else os.path.join(root.path, m.source)
        is_dir = os.path.isdir(source)
        if not os.path.exists(source):
            raise FileNotFoundError(2, "bind source does not exist", source)
    else:
        is_dir = True
        source = m.source or m.type
    covers = m.type == "tmpfs" and not bind and _exists(root, m.destination)
    target = root.ensure(m.destination, is_dir=is_dir)
    try:
        _check_proc_mount(m, root, target)
    except BaseException:
        os.close(target)
        raise
    below = root.open(m.destination, os.O_RDONLY | os.O_DIRECTORY) if covers and opts.copy_up else None
    try:
        if bind:
            sys.mount(source, fd_path(target), None, k.MS_BIND | (opts.flags & k.MS_REC))
        else:
            data = opts.data
            if covers and "mode=" not in data and os.path.isdir(fd_path(target)):
                # Like runc: a tmpfs keeps the mode of a directory it covers
                # (on a directory made for it, tmpfs's own 1777 stays).
                mode = stat.S_IMODE(os.stat(fd_path(target)).st_mode)
                data = ",".join(filter(None, [data, f"mode={mode:o}"]))
            sys.mount(source, fd_path(target), m.type or None, opts.flags & ~k.MS_REMOUNT, data or None)
            if below is not None:
                above = root.open(m.destination, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    copy_tree(below, above)
                finally:
                    os.close(above)
    finally:
        os.close(target)
        if below is not None:
            os.close(below)
    extra = opts.flags & ~(k.MS_BIND | k.MS_REC | k.MS_REMOUNT)
    remount = extra if bind and (extra or opts.clear) else None
    if remount is not None or opts.propagation:
        _adjust(root, m.destination, remount, opts.clear, opts.propagation)


# What runc lets be mounted inside /proc: the files lxcfs emulates.
PROC_MOUNTS_ALLOWED = ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
                       "net/dev", "sys/kernel/ns_last_pid")


def _check_proc_mount(m, root, target):
    """Like runc: nothing but procfs on /proc and nothing inside it beyond
    lxcfs's files, judged by where the target resolved to. A mount over a
    /proc file would take the runtime's own writes there (sysctls,
    oom_score_adj) and send them to another file (CVE-2025-52881)."""
    if m.type == "proc":
        return
    top = os.readlink(fd_path(root.fd)).rstrip("/")
    where = os.readlink(fd_path(target))
    if where != top and not where.startswith(top + "/"):
        return  # cannot happen: resolution is confined to the rootfs
    inner = where[len(top):] or "/"
    if inner == "/proc":
        raise RuntimeFailure(f"mount destination {m.destination}: cannot be mounted because it is not of type proc")
    if inner.startswith("/proc/") and inner[len("/proc/"):] not in PROC_MOUNTS_ALLOWED:
        raise RuntimeFailure(f"mount destination {m.destination}: cannot be mounted because it is inside /proc")


def _adjust(root, destination, remount_flags=None, clear=0, propagation=()):
    """Flags on a bind take effect only in a remount (keeping the source's
    locked flags unless cleared); propagation is a separate call each. The
    target is reopened: an fd taken before the mount names what is under it."""
    sys = k.get()
    fd = root.open(destination)
    try:
        where = fd_path(fd)
        if remount_flags is not None:
            keep = kept_flags(where) & ~clear
            sys.mount(None, where, None, k.MS_BIND | k.MS_REMOUNT | keep | remount_flags)
        for prop in propagation:
            sys.mount(None, where, None, prop)
    finally:
        os.close(fd)


def _mount_cgroups(m, opts, root, cgroup):
    """cgroup mounts show the container's own cgroups: a bind of its directory
    in each hierarchy (under a tmpfs when the host has several). Binds, not
    fresh cgroup mounts, because the cgroup namespace is made only after.
    One recursive mount_setattr then locks the whole tree down."""
    sys = k.get()
    if len(cgroup.paths) == 1:
        binds = [(m.destination, next(iter(cgroup.paths.values())))]
    else:
        target = root.ensure(m.destination)
        try:
            sys.mount("tmpfs", fd_path(target), "tmpfs", k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC, "mode=755")
        finally:
            os.close(target)
        binds = [(os.path.join(m.destination, os.path.basename(mp)), path) for mp, path in cgroup.paths.items()]
    for inner, path in binds:
        sub = root.ensure(inner)
        try:
            sys.mount(path, fd_path(sub), None, k.MS_BIND | k.MS_REC)
        finally:
            os.close(sub)
    attrs = k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC
    if opts.flags & k.MS_RDONLY:
        attrs |= k.MOUNT_ATTR_RDONLY
    top = root.open(m.destination)
    try:
        sys.mount_setattr(top, "", k.AT_EMPTY_PATH | k.AT_RECURSIVE, attr_set=attrs)
    finally:
        os.close(top)


def needs_dev_setup(spec):
    """Default devices are made only when /dev is a fresh mount, not a bind from the host."""
    for m in spec.mounts:
        if os.path.normpath(m.destination) == "/dev":
            return not (MountOptions(m.options).is_bind or m.type == "bind")
    return False


def setup_dev(spec, root):
    in_userns = spec.linux.namespace("user") is not None
    if needs_dev_setup(spec):
        devices.create_defaults(root, in_userns)
    devices.create(root, spec.linux.devices, in_userns)


def pivot(spec, no_pivot=False):
    """Make the rootfs the container's ``/``; the host's root is detached.
    Without a mount namespace of its own the container can only chroot, as
    in runc: the root it would pivot or move over is the runtime's."""
    sys = k.get()
    root_path = spec.root_path
    if not has_own_mount_namespace(spec):
        os.chroot(root_path)
        os.chdir("/")
        return
    if no_pivot:
        os.chdir(root_path)
        sys.mount(root_path, "/", None, k.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(root_path, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sys.pivot_root(".", ".")
        # The old root is now stacked under the new one at "."; detach it
        # without letting the unmount propagate anywhere.
        os.fchdir(old)
        sys.mount(None, ".", None, k.MS_SLAVE | k.MS_REC)
        sys.umount2(".", k.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def apply_root_propagation(spec):
    """After the pivot, "/" is the rootfs: give it the configured propagation
    (before the pivot it would have changed the host's view)."""
    if spec.linux.rootfs_propagation:
        k.get().mount(None, "/", None, root_propagation(spec))


def mask_paths(paths):
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    sys = k.get()
    for path in paths:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            sys.mount("tmpfs", path, "tmpfs", k.MS_RDONLY, "size=0k")
        else:
            devices.bind_null(path)


def readonly_paths(paths):
    sys = k.get()
    for path in paths:
        try:
            sys.mount(path, path, None, k.MS_BIND | k.MS_REC)
        except FileNotFoundError:
            continue
        sys.mount(None, path, None, k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | k.MS_REC | kept_flags(path))


def readonly_root():
    k.get().mount(None, "/", None, k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY | kept_flags("/"))
