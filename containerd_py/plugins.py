"""The daemon's plugin table, as the Introspection service reports it."""
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""


_ARCHITECTURES = {"x86_64": ("amd64", ""), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "i686": ("386", "")}


def host_platform() -> Platform:
    machine = os.uname().machine
    arch, variant = _ARCHITECTURES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


@dataclass
class Plugin:
    type: str
    id: str
    requires: list[str] = field(default_factory=list)
    platforms: list[Platform] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    init_error: str = ""  # set when the plugin could not start; it is then unusable
