"""`engine-py`: the daemon's command line, with dockerd's flags and its
daemon.json; it serves what `assembly.py` wires together.

As dockerd: a daemon.json key we do not know, or one also given as a flag,
stops the start with dockerd's message; a TCP address that is not loopback
is refused (there is no TLS here). One engine per data-root (a lock file in
it refuses a second), and a socket another daemon serves is refused
(containerd_py.endpoint). A start that fails says why in one line and
removes the directories it made. SIGTERM or SIGINT stop serving; containers
(once there are any) are left running.
"""
import argparse
import grp
import ipaddress
import json
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field

from containerd_py.content.heap import limit_arenas
from containerd_py.daemon_support import LogrusFormatter, MadeDirectories, RootLock, Signals
from containerd_py.endpoint import Endpoint, StartupError, describe_os_error

log = logging.getLogger("engine-py")

DEFAULT_SOCKET = "/run/engine-py/engine.sock"
DEFAULT_CONFIG_FILE = "/etc/engine-py/daemon.json"
DEFAULT_TCP_PORT = 2375
_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL, "panic": logging.CRITICAL}
_ATTACK_SURFACE = ("without encryption. Access to the remote API is equivalent to root access on the host. Refer to "
                   "the 'Docker daemon attack surface' section in the documentation for more information: "
                   "https://docs.docker.com/go/attack-surface/")


@dataclass
class Config:
    hosts: list[str] = field(default_factory=lambda: [f"unix://{DEFAULT_SOCKET}"])
    data_root: str = "/var/lib/engine-py"
    exec_root: str = "/run/engine-py"
    pidfile: str = ""  # <exec-root>/engine-py.pid unless set
    containerd: str = ""  # an existing containerd's socket; none: the engine runs its own containerd-py
    containerd_namespace: str = "engine-py"
    default_runtime: str = "runpy-oci"
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> path, the installed ones added
    log_level: str = "info"
    debug: bool = False
    group: str = "docker"
    live_restore: bool = True
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    init_path: str = ""  # the init of --init; "" for engine-py-init
    cgroup_parent: str = "/docker"  # containers' cgroups go under it, as dockerd's cgroupfs driver puts them
    bridge: str = ""  # -b: the default network's kernel bridge ("" engine-py0, made by the engine; "none": no bridge)
    bip: str = ""  # the default bridge's address and prefix ("" from the address pools)
    fixed_cidr: str = ""  # the default bridge's range for container addresses
    default_address_pools: list[dict] = field(default_factory=list)  # [{"base": CIDR, "size": N}]
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    iptables: bool = True  # the engine's nftables table (NAT, isolation); dockerd's flag name
    ip_masq: bool = True
    icc: bool = True
    mtu: int = 1500
    explicit_group: bool = False  # --group or "group" given: a missing group is an error, not root's gid


# daemon.json's keys (dockerd's names) -> (Config attribute, the flag that sets it too).
FILE_KEYS = {
    "hosts": ("hosts", "host"), "data-root": ("data_root", "data-root"), "exec-root": ("exec_root", "exec-root"),
    "pidfile": ("pidfile", "pidfile"), "containerd": ("containerd", "containerd"),
    "containerd-namespace": ("containerd_namespace", "containerd-namespace"),
    "default-runtime": ("default_runtime", "default-runtime"), "runtimes": ("runtimes", "add-runtime"),
    "log-level": ("log_level", "log-level"), "debug": ("debug", "debug"), "group": ("group", "group"),
    "live-restore": ("live_restore", "live-restore"),
    "insecure-registries": ("insecure_registries", "insecure-registry"),
    "registry-mirrors": ("registry_mirrors", "registry-mirror"),
    "log-driver": ("log_driver", "log-driver"), "log-opts": ("log_opts", "log-opt"),
    "cgroup-parent": ("cgroup_parent", "cgroup-parent"), "init-path": ("init_path", "init-path"),
    "bridge": ("bridge", "bridge"), "bip": ("bip", "bip"), "fixed-cidr": ("fixed_cidr", "fixed-cidr"),
    "default-address-pools": ("default_address_pools", "default-address-pool"),
    "dns": ("dns", "dns"), "dns-search": ("dns_search", "dns-search"), "dns-opts": ("dns_opts", "dns-opt"),
    "iptables": ("iptables", "iptables"), "ip-masq": ("ip_masq", "ip-masq"), "icc": ("icc", "icc"),
    "mtu": ("mtu", "mtu"),
}
_BOOL_FLAGS = ("live-restore", "iptables", "ip-masq", "icc")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="engine-py", description="A self-sufficient runtime for containers "
                                "(a dockerd: the docker CLI drives it).")
    p.add_argument("-H", "--host", action="append", help=f"daemon socket(s) to connect to (default {DEFAULT_SOCKET})")
    p.add_argument("--data-root", help="root directory of persistent engine state (default /var/lib/engine-py)")
    p.add_argument("--exec-root", help="root directory for execution state files (default /run/engine-py)")
    p.add_argument("-p", "--pidfile", help="path to use for the daemon PID file (default <exec-root>/engine-py.pid)")
    p.add_argument("--config-file", help=f"daemon configuration file (default {DEFAULT_CONFIG_FILE})")
    p.add_argument("--containerd", help="containerd grpc address (default: the engine runs its own containerd-py)")
    p.add_argument("--containerd-namespace", help="containerd namespace to use (default engine-py)")
    p.add_argument("--default-runtime", help="default OCI runtime for containers (default runpy-oci)")
    p.add_argument("--add-runtime", action="append", metavar="NAME=PATH", help="register an additional OCI runtime")
    p.add_argument("-l", "--log-level", help='set the logging level ("debug"|"info"|"warn"|"error"|"fatal")')
    p.add_argument("-D", "--debug", action="store_const", const=True, help="enable debug mode")
    p.add_argument("-G", "--group", help="group for the unix socket (default docker)")
    p.add_argument("--live-restore", nargs="?", const="true", choices=("true", "false"),
                   help="keep containers running while the daemon is down (default true)")
    p.add_argument("--insecure-registry", action="append", help="enable insecure registry communication")
    p.add_argument("--registry-mirror", action="append", help="preferred registry mirror")
    p.add_argument("--log-driver", help="default driver for container logs (default json-file)")
    p.add_argument("--log-opt", action="append", metavar="KEY=VALUE", help="default log driver options for containers")
    p.add_argument("--cgroup-parent", help="parent cgroup for all containers (default /docker)")
    p.add_argument("--init-path", help="path to the init of --init (default: engine-py-init)")
    p.add_argument("-b", "--bridge", help='attach containers to a network bridge ("none" for no bridge networking)')
    p.add_argument("--bip", help="specify network bridge IP")
    p.add_argument("--fixed-cidr", help="IPv4 subnet for fixed IPs")
    p.add_argument("--default-address-pool", action="append", metavar="base=CIDR,size=N",
                   help="default address pools for node specific local networks")
    p.add_argument("--dns", action="append", help="DNS server to use")
    p.add_argument("--dns-search", action="append", help="DNS search domains to use")
    p.add_argument("--dns-opt", action="append", help="DNS options to use")
    for flag, what in (("iptables", "enable addition of NAT and filter rules"),
                       ("ip-masq", "enable IP masquerading"), ("icc", "enable inter-container communication")):
        p.add_argument(f"--{flag}", nargs="?", const="true", choices=("true", "false"), help=f"{what} (default true)")
    p.add_argument("--mtu", type=int, help="set the containers network MTU (default 1500)")
    p.add_argument("-v", "--version", action="store_true", help="print version information and quit")
    return p


def _go(value) -> str:
    """A value as Go's %v prints it, which dockerd's conflict message uses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _key_values(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise StartupError(f'invalid argument "{item}" for "--{what}" flag: invalid {what.split("-")[-1]} '
                               f"argument: {item}")
        pairs[key] = value
    return pairs


def _address_pool(item: str) -> dict:
    """--default-address-pool's "base=CIDR,size=N" as daemon.json has it."""
    pool = _key_values(item.split(","), "default-address-pool")
    try:
        return {"base": pool["base"], "size": int(pool["size"])}
    except (KeyError, ValueError):
        raise StartupError(f'invalid argument "{item}" for "--default-address-pool" flag: '
                           "address pool requires base and size") from None


def _flag_values(args) -> dict[str, object]:
    """The flags given, by daemon.json key, in the file's types."""
    given = {}
    for key, (attr, flag) in FILE_KEYS.items():
        value = getattr(args, flag.replace("-", "_"))
        if value is None:
            continue
        if flag == "add-runtime":
            value = {name: {"path": path} for name, path in _key_values(value, flag).items()}
        elif flag == "log-opt":
            value = _key_values(value, flag)
        elif flag in _BOOL_FLAGS:
            value = value == "true"
        elif flag == "default-address-pool":
            value = [_address_pool(item) for item in value]
        given[key] = value
    return given


def _read_file(path: str, required: bool) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError as e:
        if not required:
            return {}
        raise StartupError(describe_os_error(e, "open")) from None
    except OSError as e:
        raise StartupError(describe_os_error(e, "open")) from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        raise StartupError(f"invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise StartupError("json: cannot unmarshal the file into the daemon configuration (not an object)")
    return data


def load_config(args) -> Config:
    """Flags over daemon.json, refused as dockerd refuses them (unknown keys, a key set twice)."""
    flags = _flag_values(args)
    path = args.config_file or DEFAULT_CONFIG_FILE
    try:
        in_file = _read_file(path, required=args.config_file is not None)
        unknown = [key for key in in_file if key not in FILE_KEYS]
        if unknown:
            raise StartupError(f"the following directives don't match any configuration option: {', '.join(unknown)}")
        both = [f"{key}: (from flag: {_go(flags[key])}, from file: {_go(in_file[key])})"
                for key in FILE_KEYS if key in flags and key in in_file]
        if both:
            raise StartupError("the following directives are specified both as a flag and in the configuration "
                               f"file: {', '.join(both)}")
        config = Config()
        for key, value in {**in_file, **flags}.items():
            attr = FILE_KEYS[key][0]
            if key == "runtimes":
                value = _runtime_paths(value)
            elif not isinstance(value, type(getattr(config, attr))):
                raise StartupError(f"json: cannot unmarshal {type(value).__name__} into the field {key!r}")
            setattr(config, attr, value)
    except StartupError as e:
        raise StartupError(f"unable to configure the Docker daemon with file {path}: {e}") from None
    return _complete(config, explicit_group=args.group is not None or "group" in in_file)


def _runtime_paths(runtimes) -> dict[str, str]:
    if not isinstance(runtimes, dict) or not all(isinstance(r, dict) and isinstance(r.get("path"), str)
                                                 for r in runtimes.values()):
        raise StartupError('json: runtimes must be {"name": {"path": "/path/to/runtime"}}')
    return {name: r["path"] for name, r in runtimes.items()}


def _installed_runtimes() -> dict[str, str]:
    """runpy-oci (next to this interpreter, else on PATH), and runc and crun where installed."""
    found = {}
    beside = os.path.join(os.path.dirname(sys.executable), "runpy-oci")
    for name, candidates in (("runpy-oci", (beside, shutil.which("runpy-oci"))),
                             ("runc", (shutil.which("runc"),)), ("crun", (shutil.which("crun"),))):
        path = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
        if path:
            found[name] = path
    return found


def _complete(config: Config, explicit_group: bool) -> Config:
    if config.debug:
        config.log_level = "debug"
    if config.log_level.lower() not in _LEVELS:
        raise StartupError(f"unable to parse logging level: {config.log_level}")
    config.runtimes = {**_installed_runtimes(), **config.runtimes}
    if config.default_runtime not in config.runtimes:
        raise StartupError(f"default runtime {config.default_runtime} is not among the runtimes: "
                           f"{', '.join(sorted(config.runtimes)) or 'none'}")
    config.data_root, config.exec_root = os.path.abspath(config.data_root), os.path.abspath(config.exec_root)
    config.pidfile = os.path.abspath(config.pidfile or os.path.join(config.exec_root, "engine-py.pid"))
    config.hosts = [parse_host(h) for h in config.hosts]
    config.explicit_group = explicit_group
    return config


def parse_host(host: str) -> str:
    """dockerd's -H forms: unix://PATH (unix:// alone is the default socket) or
    tcp://HOST:PORT, normalised; the rest is refused in its words."""
    proto, sep, addr = host.partition("://")
    if sep and proto == "unix":
        return f"unix://{os.path.abspath(addr or DEFAULT_SOCKET)}"
    if sep and proto == "tcp":
        hostname, colon, port = addr.rpartition(":") if ":" in addr else (addr, "", "")
        if colon and not port.isdigit() or not colon and not addr:
            raise StartupError(f'invalid argument "{host}" for "-H, --host" flag: invalid port "{colon}{port}" '
                               "after host")
        return f"tcp://{hostname or '0.0.0.0'}:{port or DEFAULT_TCP_PORT}"
    raise StartupError(f'invalid argument "{host}" for "-H, --host" flag: Invalid bind address format: {host}')


def _tcp_address(host: str) -> tuple[str, str]:
    """(address, port) of a loopback tcp:// host; any other is refused, as dockerd refuses it without TLS."""
    address, _, port = host[len("tcp://"):].rpartition(":")
    address = address.strip("[]")
    try:
        loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise StartupError(f"failed to load listeners: API is accessible on http://{address}:{port} {_ATTACK_SURFACE}")
    return address, port


def _tcp_listener(host: str) -> socket.socket:
    address, port = _tcp_address(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, int(port)))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise StartupError(f"failed to load listeners: listen tcp {address}:{port}: {describe_os_error(e)}") from None
    return sock


def _socket_gid(config: Config) -> int:
    try:
        return grp.getgrnam(config.group).gr_gid
    except KeyError:
        if config.explicit_group:
            raise StartupError(f"can't create unix socket: group {config.group} not found") from None
        return 0  # dockerd's default group "docker" may not exist: root's then


def _running(pid: int) -> bool:
    """Alive, not a zombie its parent has yet to reap (the reaper may be slow)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def write_pidfile(path: str) -> None:
    """dockerd's pidfile: refused while the pid in it is a live process."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid > 0 and _running(pid):
        raise StartupError(f"failed to start daemon: pid file found, ensure engine-py is not running or delete {path}")
    with open(path, "w") as f:
        f.write(f"{os.getpid()}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version:
        from engine.services.system import VERSION
        print(f"engine-py version {VERSION}")
        return 0
    try:
        if os.geteuid() != 0:
            raise StartupError("engine-py needs to be started with root privileges")
        config = load_config(args)
    except StartupError as e:
        print(f"engine-py: {e}", file=sys.stderr)
        return 1
    limit_arenas(2, fixed_mmap_threshold=True)  # before any thread starts
    handler = logging.StreamHandler()
    handler.setFormatter(LogrusFormatter())
    logging.basicConfig(level=_LEVELS[config.log_level.lower()], handlers=[handler])
    stop = Signals()  # everything is torn down from the main thread
    try:
        _run(config, stop)
    except StartupError as e:
        print(f"engine-py: {e}", file=sys.stderr)
        return 1
    return 0


def _run(config: Config, stop: "Signals") -> None:
    unix_paths = [h[len("unix://"):] for h in config.hosts if h.startswith("unix://")]
    for host in config.hosts:  # refused before anything is made
        if host.startswith("tcp://"):
            _tcp_address(host)
    gid = _socket_gid(config)
    endpoints = [Endpoint(path) for path in unix_paths]
    for endpoint in endpoints:
        endpoint.refuse_if_served()  # before anything is made
    made = MadeDirectories()
    lock = None
    try:
        for path in (config.data_root, config.exec_root, *{os.path.dirname(p) for p in unix_paths}):
            made.create(path)
        os.chmod(config.exec_root, 0o700)
        lock = RootLock(config.data_root, "engine-py", "data-root")
        write_pidfile(config.pidfile)
    except (StartupError, OSError) as e:
        if lock is not None:
            lock.release()
        made.remove(with_contents=False)
        raise e if isinstance(e, StartupError) else StartupError(describe_os_error(e)) from None
    try:
        _serve(config, endpoints, gid, stop)
    except StartupError:
        made.remove(with_contents=True)  # the lock proves them ours
        raise
    finally:
        try:
            os.unlink(config.pidfile)
        except OSError:
            pass
        lock.release()


def _serve(config: Config, endpoints: list[Endpoint], gid: int, stop: "Signals") -> None:
    from engine.supervisor import ContainerdSupervisor  # what serves loads once the data-root is ours

    log.info("Starting up")
    started = time.monotonic()
    supervisor = None
    if not config.containerd:  # as dockerd without --containerd: a containerd of its own
        supervisor = ContainerdSupervisor(config.data_root, config.exec_root, config.log_level)
        supervisor.start()
        config.containerd = supervisor.address
    try:
        containerd_version = supervisor.version if supervisor is not None else None
        _serve_api(config, endpoints, gid, stop, containerd_version, started)
    finally:
        if supervisor is not None:
            supervisor.stop()
    log.info("Daemon shutdown complete")


def _serve_api(config: Config, endpoints: list[Endpoint], gid: int, stop: "Signals", containerd_version,
               started: float) -> None:
    from engine.assembly import Assembly
    from engine.errors import EngineError

    try:
        assembly = Assembly(config, containerd_version)
    except EngineError as e:
        raise StartupError(str(e)) from None
    try:
        _listen(config, endpoints, gid, stop, assembly.server(), started)
    finally:
        assembly.close()


def _listen(config: Config, endpoints: list[Endpoint], gid: int, stop: "Signals", server, started: float) -> None:
    from engine.services.system import VERSION

    claimed = []
    try:
        for host in config.hosts:
            if host.startswith("tcp://"):
                server.add(_tcp_listener(host))
                log.warning("Binding to IP address without --tlsverify is insecure and gives root access on this "
                            "machine to everyone who has access to your network.", extra={"fields": {"host": host}})
        for endpoint in endpoints:
            endpoint.claim(server.listen_unix, 0, gid)
            claimed.append(endpoint)
        server.start()
    except StartupError:
        server.stop()
        for endpoint in claimed:
            endpoint.release()
        raise
    for host in config.hosts:
        log.info("API listen on %s", host.split("://", 1)[1])
    log.info("Daemon has completed initialization", extra={"fields": {"version": VERSION,
                                                                         "took": f"{time.monotonic() - started:.3f}s"}})
    log.info("Processing signal '%s'", stop.wait())
    server.stop()
    for endpoint in endpoints:
        endpoint.release()


if __name__ == "__main__":
    sys.exit(main())
