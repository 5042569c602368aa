"""runc's command line as data: global flags, verbs, their flags and arguments.

Both front ends are built from this one table (see runpy_oci/cli/README.md):
the fast parser that programs hit on every call, and the click application
that people get for ``--help``.
"""


class Flag:
    __slots__ = ("name", "short", "kind", "default", "help")

    def __init__(self, name, kind="str", default=None, short=None, help=""):
        self.name = name
        self.kind = kind  # "bool" | "str" | "int" | "list" (repeatable, each use adds one)
        if kind == "list":
            default = ()
        self.default = default if default is not None or kind != "bool" else False
        self.short = short
        self.help = help

    @property
    def attr(self):
        return self.name.replace("-", "_")


class Verb:
    __slots__ = ("name", "flags", "args", "min_args", "max_args", "help")

    def __init__(self, name, help, args=(), min_args=None, max_args=None, flags=()):
        self.name = name
        self.help = help
        self.args = args  # names for the usage line
        self.min_args = len([a for a in args if not a.startswith("[")]) if min_args is None else min_args
        self.max_args = len(args) if max_args is None else max_args
        self.flags = flags


# help texts are runc's words, with a note where runpy-oci differs
GLOBAL_FLAGS = (
    Flag("root", default="/run/runpy-oci", help="root directory for storage of container state (this should be located in tmpfs)"),
    Flag("log", default="", help="set the log file to write runpy-oci logs to (default is stderr)"),
    Flag("log-format", default="text", help="set the log format ('text' (default), or 'json')"),
    Flag("debug", "bool", help="enable debug logging"),
    Flag("systemd-cgroup", "bool", help="enable systemd cgroup support (accepted; cgroupfs is used)"),
    Flag("rootless", default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
)

_BUNDLE = Flag("bundle", short="b", default=".",
               help="path to the root of the bundle directory, defaults to the current directory")
_PID_FILE = Flag("pid-file", help="specify the file to write the process id to")
_CONSOLE = Flag("console-socket", help="path to an AF_UNIX socket which will receive a file descriptor "
                                       "referencing the master end of the console's pseudoterminal")
_NO_PIVOT = Flag("no-pivot", "bool", help="do not use pivot root to jail process inside rootfs.  This should "
                                          "be used whenever the rootfs is on top of a ramdisk")
_NO_KEYRING = Flag("no-new-keyring", "bool", help="do not create a new session keyring for the container "
                                                  "(accepted; no keyring is made)")
_PRESERVE = Flag("preserve-fds", "int", default=0, help="Pass N additional file descriptors to the container "
                                                        "(stdio + $LISTEN_FDS + N in total)")

# update's resource flags: the field of linux.resources each sets, and its help
UPDATE_FIELDS = {
    "blkio-weight": ("blockIO", "weight", "Specifies per cgroup weight, range is from 10 to 1000"),
    "cpu-period": ("cpu", "period", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    "cpu-quota": ("cpu", "quota", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    "cpu-share": ("cpu", "shares", "CPU shares (relative weight vs. other containers)"),
    "cpu-rt-period": ("cpu", "realtimePeriod",
                      "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime",
                       "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    "cpuset-cpus": ("cpu", "cpus", "CPU(s) to use"),
    "cpuset-mems": ("cpu", "mems", "Memory node(s) to use"),
    "kernel-memory": ("memory", "kernel", "Kernel memory limit (in bytes)"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "Kernel memory limit (in bytes) for tcp buffer"),
    "memory": ("memory", "limit", "Memory limit (in bytes)"),
    "memory-reservation": ("memory", "reservation", "Memory reservation or soft_limit (in bytes)"),
    "memory-swap": ("memory", "swap", "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    "pids-limit": ("pids", "limit", "Maximum number of pids allowed in the container"),
}

VERBS = {
    v.name: v
    for v in (
        Verb("create", "create a container", ("<container-id>",),
             flags=(_BUNDLE, _CONSOLE, _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE)),
        Verb("start", "executes the user defined process in a created container", ("<container-id>",)),
        Verb("run", "create and run a container", ("<container-id>",),
             flags=(_BUNDLE, _CONSOLE, Flag("detach", "bool", short="d", help="detach from the container's process"),
                    _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE,
                    Flag("keep", "bool", help="do not delete the container after it exits"))),
        Verb("exec", "execute new process inside the container", ("<container-id>", "[command]", "[args...]"),
             max_args=1 << 16,
             flags=(_CONSOLE, Flag("cwd", default="", help="current working directory in the container"),
                    Flag("env", "list", short="e", help="set environment variables"),
                    Flag("tty", "bool", short="t", help="allocate a pseudo-TTY"),
                    Flag("user", short="u", default="", help="UID (format: <uid>[:<gid>])"),
                    Flag("additional-gids", "list", short="g", help="additional gids"),
                    Flag("process", short="p", default="", help="path to the process.json"),
                    Flag("detach", "bool", short="d", help="detach from the container's process"),
                    _PID_FILE,
                    Flag("process-label", default="", help="set the asm process label for the process commonly used "
                                                                   "with selinux (ignored without SELinux)"),
                    Flag("apparmor", default="", help="set the apparmor profile for the process (ignored without AppArmor)"),
                    Flag("no-new-privs", "bool", help="set the no new privileges value for the process"),
                    Flag("cap", "list", short="c", help="add a capability to the bounding set for the process"),
                    _PRESERVE,
                    Flag("cgroup", "list", help="run the process in an (existing) sub-cgroup(s). Format is "
                                                       "[<controller>:]<cgroup>. (accepted; the container's own is used)"),
                    Flag("ignore-paused", "bool", help="allow exec in a paused container"))),
        Verb("state", "output the state of a container", ("<container-id>",)),
        Verb("kill", "kill sends the specified signal (default: SIGTERM) to the container's init process",
             ("<container-id>", "[signal]"),
             flags=(Flag("all", "bool", short="a", help="send the specified signal to all processes inside the container"),)),
        Verb("delete", "delete any resources held by the container often used with detached container",
             ("<container-id>",),
             flags=(Flag("force", "bool", short="f",
                         help="Forcibly deletes the container if it is still running (uses SIGKILL)"),)),
        Verb("list", "lists containers started by runpy-oci with the given root", (),
             flags=(Flag("format", short="f", default="table", help="select one of: table or json"),
                    Flag("quiet", "bool", short="q", help="display only container IDs"))),
        Verb("pause", "pause suspends all processes inside the container", ("<container-id>",)),
        Verb("resume", "resumes all processes that have been previously paused", ("<container-id>",)),
        Verb("ps", "ps displays the processes running inside a container", ("<container-id>", "[ps options]"),
             max_args=1 << 16,
             flags=(Flag("format", short="f", default="table", help="select one of: table or json"),)),
        Verb("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
             ("<container-id>",),
             flags=(Flag("interval", default="5s", help="set the stats collection interval"),
                    Flag("stats", "bool", help="display the container's stats then exit"))),
        Verb("update", "update container resource constraints", ("<container-id>",),
             flags=(Flag("resources", short="r", default="",
                         help="path to the file containing the resources to update or '-' to read from the "
                              "standard input"),
                    *(Flag(name, default="", help=text) for name, (_, _, text) in UPDATE_FIELDS.items()))),
        Verb("features", "show the enabled features", ()),
        Verb("spec", "create a new specification file", (),
             flags=(_BUNDLE, Flag("rootless", "bool", help="generate a configuration for a rootless container"))),
    )
}


class UsageError(Exception):
    pass


class NeedsHelp(Exception):
    """The caller is a person asking for help (or mistyped a verb): use click."""


class ShowVersion(Exception):
    """``--version`` / ``-v`` before the verb, as runc has it."""


class Command:
    __slots__ = ("verb", "globals", "options", "args")

    def __init__(self, verb, globals_, options, args):
        self.verb = verb
        self.globals = globals_
        self.options = options
        self.args = args


def _defaults(flags):
    return {f.attr: f.default for f in flags}


def _lookup(flags, token):
    """(Flag, inline value or None) for a token like -b, --bundle, -bundle=x."""
    name, eq, value = token.lstrip("-").partition("=")
    for f in flags:
        if name == f.name or (f.short and name == f.short):
            return f, (value if eq else None)
    return None, None


def _take_flags(argv, i, flags, into, where):
    """Go-style flag parsing: stops at the first argument that is not a flag."""
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return i + 1
        if not tok.startswith("-") or tok == "-":
            return i
        if tok in ("-h", "--help", "-help"):
            raise NeedsHelp()
        if flags is GLOBAL_FLAGS and tok in ("-v", "--version", "-version"):
            raise ShowVersion()
        flag, value = _lookup(flags, tok)
        if flag is None:
            raise UsageError(f"flag provided but not defined: {tok.split('=')[0]}{where}")
        i += 1
        if flag.kind == "bool":
            if value is None:
                into[flag.attr] = True
            elif value.lower() in ("true", "1", "false", "0"):
                into[flag.attr] = value.lower() in ("true", "1")
            else:
                raise UsageError(f"invalid boolean value {value!r} for -{flag.name}")
            continue
        if value is None:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: {tok}")
            value = argv[i]
            i += 1
        if flag.kind == "list":
            into[flag.attr] = (*into[flag.attr], value)
            continue
        if flag.kind == "int":
            if not value.lstrip("-").isdigit():
                raise UsageError(f"invalid value {value!r} for flag -{flag.name}: parse error")
            value = int(value)
        into[flag.attr] = value
    return i


def parse(argv):
    """argv (without the program name) -> Command, or UsageError / NeedsHelp."""
    g = _defaults(GLOBAL_FLAGS)
    i = _take_flags(argv, 0, GLOBAL_FLAGS, g, "")
    if i >= len(argv) or argv[i] == "help" or argv[i] not in VERBS:
        raise NeedsHelp()
    verb = VERBS[argv[i]]
    opts = _defaults(verb.flags)
    j = _take_flags(argv, i + 1, verb.flags, opts, f" (in {verb.name})")
    args = argv[j:]
    if not verb.min_args <= len(args) <= verb.max_args:
        exact = verb.min_args == verb.max_args
        want = f"exactly {verb.min_args}" if exact else f"{verb.min_args} to {verb.max_args}"
        raise UsageError(f'"{verb.name}" requires {want} argument(s)')
    return Command(verb, g, opts, args)
