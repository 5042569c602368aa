"""runc exec's command line: the process from ``-p process.json``, or the
container's own process with the command and the flags applied to it."""
from runpy_oci import log
from runpy_oci.cli import root_dir
from runpy_oci.errors import ConfigError, RuntimeFailure
from runpy_oci.exec import ExecOptions, exec_process


# runc's exit status for an exec that did not get to run the program
FAILED = 255


def run(cmd):
    """runc's wording and status: every error is "exec failed: ..." and exit status 255."""
    o = cmd.options
    try:
        make = _from_file(o["process"]) if o["process"] else _from_flags(cmd)
        opts = ExecOptions(make, detach=o["detach"], pid_file=o["pid_file"], console_socket=o["console_socket"],
                           preserve_fds=o["preserve_fds"], ignore_paused=o["ignore_paused"])
        return exec_process(root_dir(cmd), cmd.args[0], opts)
    except RuntimeFailure as e:
        log.fatal(f"exec failed: {e}")
    except OSError as e:
        log.fatal(f"exec failed: {e.strerror}: {e.filename}" if e.filename else f"exec failed: {e}")
    return FAILED


def _from_file(path):
    from runpy_oci import fastjson
    from runpy_oci.spec.fields import Fields
    from runpy_oci.spec.model import Process

    try:
        with open(path) as f:
            data = fastjson.loads(f.read())
    except OSError as e:
        raise RuntimeFailure(f"open {path}: {e.strerror.lower()}") from None
    except ValueError as e:
        raise ConfigError(f"process: invalid JSON in {path}: {e}") from None
    return lambda spec: Process(Fields(data, "process"))


def _from_flags(cmd):
    o, args = cmd.options, cmd.args[1:]
    if not args:
        raise RuntimeFailure("process args cannot be empty")

    def make(spec):
        import copy  # here: ~1.5 ms to import, and ctr's and containerd's execs come with -p

        from runpy_oci.capabilities import NUMBERS

        p = copy.copy(spec.process)
        p.args, p.terminal, p.console_size = list(args), o["tty"], None
        p.env = [*p.env, *o["env"]]
        p.apparmor_profile = o["apparmor"] or p.apparmor_profile
        p.selinux_label = o["process_label"] or p.selinux_label
        if o["cwd"]:
            p.cwd = o["cwd"]
        if o["user"] or o["additional_gids"]:
            p.user = copy.copy(p.user)
            if o["user"]:
                uid, _, gid = o["user"].partition(":")
                if not uid.isdigit() or (gid and not gid.isdigit()):
                    raise RuntimeFailure(f"exec: --user {o['user']!r}: expected <uid>[:<gid>]")
                p.user.uid, p.user.gid = int(uid), int(gid) if gid else p.user.gid
            if o["additional_gids"]:
                if not all(g.isdigit() for g in o["additional_gids"]):
                    raise RuntimeFailure("exec: --additional-gids: expected numbers")
                p.user.additional_gids = [int(g) for g in o["additional_gids"]]
        if o["cap"]:
            unknown = [c for c in o["cap"] if c not in NUMBERS]
            if unknown:
                raise RuntimeFailure(f"exec: unknown capability {unknown[0]!r}")
            caps = {kind: list(names) for kind, names in (p.capabilities or {}).items()}
            for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
                caps[kind] = [*caps.get(kind, []), *(c for c in o["cap"] if c not in caps.get(kind, []))]
            p.capabilities = caps
        if o["no_new_privs"]:
            p.no_new_privileges = True
        return p
    return make
