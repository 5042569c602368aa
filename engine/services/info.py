"""`GET /info` and `GET /system/df` in dockerd 20.10's shapes, so that
`docker info` (CLI 20.10 and 28) and `docker system df [-v]` print them as
they print dockerd's.

The machine's facts (cgroup features, memory, the OS) are read from files
under a root (`/` but in tests), as dockerd's sysinfo reads them. Warnings
are dockerd's: for missing cgroup features, for IP forwarding and
bridge-nf-call-ip(6)tables turned off, and for a TCP socket without TLS
(every TCP socket is one).
"""
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from containerd_py.identifiers import random_uuid

from engine import init
from engine.services.images import Catalog, ImageService
from engine.services.system import VERSION, SystemService
from engine.store.record import go_time
from engine.textfiles import read_or_empty, write_atomically

log = logging.getLogger(__name__)

# dockerd 20.10's fillAPIInfo warning for a TCP socket (there is no TLS here)
PLAIN_TCP_WARNING = ("WARNING: API is accessible on http://{address} without encryption.\n"
                     "         Access to the remote API is equivalent to root access on the host. Refer\n"
                     "         to the 'Docker daemon attack surface' section in the documentation for\n"
                     "         more information: https://docs.docker.com/go/attack-surface/")
SNAPSHOTTER_DRIVER_TYPE = ["driver-type", "io.containerd.snapshotter.v1"]  # moby's with containerd's image store
ENGINE_ID_FILE = "engine-id"
INDEX_SERVER = "https://index.docker.io/v1/"
LOOPBACK_CIDR = "127.0.0.0/8"  # dockerd's default insecure registry range
NETWORK_DRIVERS = ["bridge", "host", "null"]
LOG_DRIVERS = ["json-file"]
SWARM_INACTIVE = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None}


def image_layers(images: ImageService) -> dict[str, dict[str, int]]:
    """Each image's layers (digest -> size), which df's shared sizes count."""
    return {view.id: {layer.digest: images.door.layer_size(layer) for layer in view.resolved.layers}
            for view in Catalog(images.door).by_id.values()}


def engine_id(data_root: str) -> str:
    """The engine's ID, made once and kept in the data-root (moby's engine-id file)."""
    path = os.path.join(data_root, ENGINE_ID_FILE)
    try:
        with open(path) as f:
            kept = f.read().strip()
        if kept:
            return kept
    except FileNotFoundError:
        pass
    made = random_uuid()
    write_atomically(path, lambda f: f.write(made))
    return made


@dataclass(frozen=True)
class CgroupFeatures:
    """What the kernel's cgroups can limit, as dockerd's sysinfo finds it."""
    version: int
    memory: bool
    swap: bool
    kernel_memory: bool
    kernel_memory_tcp: bool
    oom_kill_disable: bool
    cpu_cfs_period: bool
    cpu_cfs_quota: bool
    cpu_shares: bool
    cpuset: bool
    pids: bool

    def warnings(self) -> list[str]:
        """dockerd 20.10's fillInfo warnings, in its order."""
        missing = [(self.memory, "WARNING: No memory limit support"),
                   (self.swap, "WARNING: No swap limit support"),
                   (self.kernel_memory or self.version == 2, "WARNING: No kernel memory limit support"),
                   (self.kernel_memory_tcp or self.version == 2, "WARNING: No kernel memory TCP limit support"),
                   (self.oom_kill_disable or self.version == 2, "WARNING: No oom kill disable support"),
                   (self.cpu_cfs_quota, "WARNING: No cpu cfs quota support"),
                   (self.cpu_cfs_period, "WARNING: No cpu cfs period support"),
                   (self.cpu_shares, "WARNING: No cpu shares support"),
                   (self.cpuset, "WARNING: No cpuset support")]
        return [text for present, text in missing if not present]


class Machine:
    """The host's facts, from files under `root`."""

    def __init__(self, root: str = "/"):
        self.root = root

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _read(self, path: str) -> str:
        return read_or_empty(self._path(path))

    def _exists(self, path: str) -> bool:
        return os.path.exists(self._path(path))

    def cgroups(self) -> CgroupFeatures:
        if self._exists("/sys/fs/cgroup/cgroup.controllers"):
            controllers = set(self._read("/sys/fs/cgroup/cgroup.controllers").split())
            memory = "memory" in controllers
            swap = memory and self._swap_v2()
            return CgroupFeatures(2, memory, swap, False, False, False, "cpu" in controllers, "cpu" in controllers,
                                  "cpu" in controllers, "cpuset" in controllers, "pids" in controllers)
        mem, cpu = "/sys/fs/cgroup/memory/", "/sys/fs/cgroup/cpu/"
        return CgroupFeatures(
            1, self._exists(mem + "memory.limit_in_bytes"), self._exists(mem + "memory.memsw.limit_in_bytes"),
            self._exists(mem + "memory.kmem.limit_in_bytes"), self._exists(mem + "memory.kmem.tcp.limit_in_bytes"),
            self._exists(mem + "memory.oom_control"), self._exists(cpu + "cpu.cfs_period_us"),
            self._exists(cpu + "cpu.cfs_quota_us"), self._exists(cpu + "cpu.shares"),
            self._exists("/sys/fs/cgroup/cpuset/cpuset.cpus"), self._exists("/sys/fs/cgroup/pids"))

    def _swap_v2(self) -> bool:
        """Swap limits exist when some child cgroup has memory.swap.max (the root has none)."""
        top = self._path("/sys/fs/cgroup")
        try:
            return any(os.path.exists(os.path.join(top, entry.name, "memory.swap.max"))
                       for entry in os.scandir(top) if entry.is_dir())
        except OSError:
            return False

    def os_release(self) -> tuple[str, str]:
        """(PRETTY_NAME, VERSION_ID) of os-release, as dockerd's OperatingSystem and OSVersion."""
        fields = {}
        for line in (self._read("/etc/os-release") or self._read("/usr/lib/os-release")).splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip('"')
        return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")

    def mem_total(self) -> int:
        for line in self._read("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
        return 0

    def sysctl_on(self, name: str) -> bool:
        return self._read("/proc/sys/" + name.replace(".", "/")).strip() == "1"


class InfoService:
    """Answers `/info` and `/system/df` from the engine's parts:
    `containers()` the container records, `images()` the image list's
    summaries, `image_layers()` each image's layers (digest -> size),
    `container_summaries()` the `ps -a --size` entries (SizeRw and
    SizeRootFs measured already), `listeners()` the events subscribers,
    `volumes()` the volumes with their UsageData."""

    def __init__(self, config, system: SystemService, snapshotter: str, containers: Callable[[], list],
                 images: Callable[[], list[dict]], image_layers: Callable[[], dict[str, dict[str, int]]],
                 container_summaries: Callable[[], list[dict]], listeners: Callable[[], int], machine: Machine | None = None,
                 volumes: Callable[[], list[dict]] = list):
        self.config, self.system, self.snapshotter = config, system, snapshotter
        self.containers, self.images, self.image_layers = containers, images, image_layers
        self.container_summaries, self.listeners, self.volumes = container_summaries, listeners, volumes
        self.machine = machine or Machine()
        self.id = engine_id(config.data_root)

    # -- /info ---------------------------------------------------------------------------------------------------

    def info(self) -> dict:
        states = Counter(record.state.status for record in self.containers())
        cgroups = self.machine.cgroups()
        operating_system, os_version = self.machine.os_release()
        components = {c["Name"]: c["Details"].get("GitCommit", "") for c in self.system.version()["Components"]}
        security = ["name=seccomp,profile=default"] + (["name=cgroupns"] if cgroups.version == 2 else [])
        return {
            "ID": self.id, "Containers": sum(states.values()), "ContainersRunning": states["running"],
            "ContainersPaused": states["paused"],
            "ContainersStopped": sum(states.values()) - states["running"] - states["paused"],
            "Images": len(self.images()), "Driver": self.snapshotter, "DriverStatus": [SNAPSHOTTER_DRIVER_TYPE],
            "Plugins": {"Volume": [], "Network": NETWORK_DRIVERS, "Authorization": None, "Log": LOG_DRIVERS},
            "MemoryLimit": cgroups.memory, "SwapLimit": cgroups.swap, "KernelMemory": cgroups.kernel_memory,
            "KernelMemoryTCP": cgroups.kernel_memory_tcp, "CpuCfsPeriod": cgroups.cpu_cfs_period,
            "CpuCfsQuota": cgroups.cpu_cfs_quota, "CPUShares": cgroups.cpu_shares, "CPUSet": cgroups.cpuset,
            "PidsLimit": cgroups.pids, "IPv4Forwarding": self.machine.sysctl_on("net.ipv4.ip_forward"),
            "BridgeNfIptables": self.machine.sysctl_on("net.bridge.bridge-nf-call-iptables"),
            "BridgeNfIp6tables": self.machine.sysctl_on("net.bridge.bridge-nf-call-ip6tables"),
            "Debug": bool(self.config.debug), "NFd": _open_fds(), "OomKillDisable": cgroups.oom_kill_disable,
            "NGoroutines": threading.active_count(), "SystemTime": go_time(time.time_ns()),
            "LoggingDriver": self.config.log_driver, "CgroupDriver": "cgroupfs", "CgroupVersion": str(cgroups.version),
            "NEventsListener": self.listeners(), "KernelVersion": os.uname().release,
            "OperatingSystem": operating_system, "OSVersion": os_version, "OSType": "linux",
            "Architecture": os.uname().machine, "IndexServerAddress": INDEX_SERVER,
            "RegistryConfig": self._registry_config(), "NCPU": len(os.sched_getaffinity(0)),
            "MemTotal": self.machine.mem_total(), "GenericResources": None, "DockerRootDir": self.config.data_root,
            "HttpProxy": _env("HTTP_PROXY"), "HttpsProxy": _env("HTTPS_PROXY"), "NoProxy": _env("NO_PROXY"),
            "Name": os.uname().nodename, "Labels": [], "ExperimentalBuild": False, "ServerVersion": VERSION,
            "Runtimes": {name: {"path": path} for name, path in sorted(self.config.runtimes.items())},
            "DefaultRuntime": self.config.default_runtime, "Swarm": SWARM_INACTIVE,
            "LiveRestoreEnabled": bool(self.config.live_restore), "Isolation": "",
            "InitBinary": self.config.init_path or init.BINARY,
            "ContainerdCommit": _commit(components.get("containerd", "")),
            "RuncCommit": _commit(components.get("runc", "")), "InitCommit": _commit(""),
            "SecurityOptions": security,
            "Warnings": cgroups.warnings() + self._network_warnings() + self._api_warnings(),
        }

    def _network_warnings(self) -> list[str]:
        """dockerd's, for the sysctls its bridge networks need."""
        return [warning for sysctl, warning in (
            ("net.ipv4.ip_forward", "WARNING: IPv4 forwarding is disabled"),
            ("net.bridge.bridge-nf-call-iptables", "WARNING: bridge-nf-call-iptables is disabled"),
            ("net.bridge.bridge-nf-call-ip6tables", "WARNING: bridge-nf-call-ip6tables is disabled"))
            if not self.machine.sysctl_on(sysctl)]

    def _api_warnings(self) -> list[str]:
        return [PLAIN_TCP_WARNING.format(address=host.partition("://")[2]) for host in self.config.hosts
                if host.startswith("tcp://")]

    def _registry_config(self) -> dict:
        """dockerd's ServiceConfig: CIDRs and hosts given as insecure, docker.io the official index."""
        cidrs = [LOOPBACK_CIDR] + [r for r in self.config.insecure_registries if "/" in r and r != LOOPBACK_CIDR]
        indexes = {"docker.io": {"Name": "docker.io", "Mirrors": list(self.config.registry_mirrors), "Secure": True,
                                 "Official": True}}
        for host in self.config.insecure_registries:
            if "/" not in host:
                indexes[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
        return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes, "Mirrors": list(self.config.registry_mirrors)}

    # -- /system/df ----------------------------------------------------------------------------------------------

    def disk_usage(self) -> dict:
        """dockerd's SystemDiskUsage: images with their container counts and
        shared sizes, containers with theirs, volumes with their sizes and
        users, the size of all layers; no build cache is kept."""
        layers = self.image_layers()
        users = Counter(record.image for record in self.containers())
        holders = Counter(digest for image_layers in layers.values() for digest in image_layers)
        images = []
        for summary in self.images():
            owned = layers.get(summary["Id"], {})
            shared = sum(size for digest, size in owned.items() if holders[digest] > 1)
            images.append({**summary, "Containers": users[summary["Id"]], "SharedSize": shared})
        containers = self.container_summaries()
        every_layer = {digest: size for image_layers in layers.values() for digest, size in image_layers.items()}
        return {"LayersSize": sum(every_layer.values()), "Images": images, "Containers": containers,
                "Volumes": self.volumes(), "BuildCache": [], "BuilderSize": 0}


def _commit(commit: str) -> dict:
    return {"ID": commit, "Expected": commit}


def _env(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.lower()) or ""


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
