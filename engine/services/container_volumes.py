"""The volumes a container uses, as dockerd gives them: the named ones of its
Binds and Mounts (made when missing), an anonymous one for each Binds or
Mounts entry without a name and for each path of Config.Volumes and the
image's VOLUMEs no user mount covers, the volumes and binds of the
containers its VolumesFrom names (read-only with ``:ro``) where its own
mounts leave room. An empty volume gets the image's content at its
destination (unless ``nocopy``); anonymous ones go with the container when
it is removed with its volumes (``rm -v``, ``--rm``), unless it named them. A volume with driver
options is mounted when a container using it starts and unmounted once no
running container uses it.

The volume service is behind ``VolumeProvider``; without one (the container
service's own tests) a container that needs a volume is refused.
"""
import contextlib
import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from engine.errors import InvalidParameter, NotFound, System
from engine.oci.mounts import PROPAGATIONS, MountPoint, valid_mode


class VolumeProvider(Protocol):
    """The volume service's side: volumes by name, their mounts, removal of anonymous ones."""

    def for_container(self, name: str, labels: dict | None = None, options: dict | None = None) -> tuple[str, str]:
        """(name, mountpoint) of the volume, made when missing ("": a new anonymous one) with these."""

    def remove_anonymous(self, names: list[str]) -> None:
        """Removes those of the volumes that are anonymous and used by no container."""

    def mount(self, name: str, container_id: str, destination: str, writable: bool) -> None:
        """The container starts with the volume: one with driver options is mounted, unless it is."""

    def unmount(self, name: str, container_id: str, last_user: bool) -> None:
        """The container stopped: a volume with driver options is unmounted when it was the last user."""


class NoVolumes:
    """No volume service: containers get no volumes."""

    def for_container(self, name: str, labels: dict | None = None, options: dict | None = None) -> tuple[str, str]:
        raise InvalidParameter("volumes are not available to this container")

    def remove_anonymous(self, names: list[str]) -> None:
        pass

    def mount(self, name: str, container_id: str, destination: str, writable: bool) -> None:
        pass

    def unmount(self, name: str, container_id: str, last_user: bool) -> None:
        pass


class ContainerVolumes:
    """Resolves a container's volumes at create; removes its anonymous ones."""

    def __init__(self, provider: VolumeProvider | None = None, running: Callable[[], Iterable] = tuple,
                 find: Callable | None = None):
        """``running()``: the records of the running containers; ``find(ref)``
        a container's record (NotFound in dockerd's words when there is none)."""
        self.provider = provider or NoVolumes()
        self.running = running
        self.find = find

    def resolve(self, mounts, config_volumes, volumes_from=()) -> tuple[list[MountPoint], dict]:
        """``mounts`` (the parsed HostConfig's) with each volume's source its
        mountpoint, plus those of the ``volumes_from`` containers and
        anonymous ones for ``config_volumes`` (paths) that no mount covers;
        and the MountPoints records of all but ``mounts``' binds and tmpfs."""
        borrowed, points = self._volumes_from(volumes_from, {m.destination for m in mounts})
        covered = {m.destination for m in mounts} | set(points)
        wanted = list(mounts) + [MountPoint(os.path.normpath(path), volume="") for path in sorted(config_volumes)
                                 if os.path.normpath(path) not in covered]
        resolved = borrowed
        try:
            for index, mount in enumerate(wanted):
                if mount.volume is None:
                    resolved.append(mount)
                    continue
                name, path = self.provider.for_container(mount.volume, mount.volume_labels, mount.volume_options)
                resolved.append(dataclasses.replace(mount, source=path, volume=name))
                mode = mount.mode or ("z" if index < len(mounts) and mount.volume else "")
                points[mount.destination] = {
                    "Source": path, "Destination": mount.destination, "RW": mount.writable, "Name": name,
                    "Driver": "local", "Type": "volume", "Mode": mode, "Propagation": "", "CopyData": mount.copy_data,
                    "Named": bool(mount.volume)}
        except BaseException:
            self.removed(points)  # the anonymous ones made so far
            raise
        return resolved, points

    def _volumes_from(self, specs, covered: set) -> tuple[list[MountPoint], dict]:
        """The mounts and records VolumesFrom gives (each ``container[:mode]``), but at ``covered``."""
        mounts, points = [], {}
        for spec in specs:
            if not spec:
                raise InvalidParameter("volumes-from specification cannot be an empty string")
            ref, _, mode = spec.partition(":")
            if mode and (not valid_mode(mode) or any(option in PROPAGATIONS for option in mode.split(","))):
                raise InvalidParameter(f"invalid mode: {mode}")
            if self.find is None:
                raise InvalidParameter("volumes-from is not available to this container")
            try:
                source = self.find(ref)
            except NotFound as err:  # 400 as dockerd (a 404 the CLI would take for a missing image)
                raise InvalidParameter(str(err)) from None
            for destination, point in source.mount_points.items():
                if destination in covered or point.get("Type") not in ("volume", "bind"):
                    continue
                writable = point.get("RW", True) and "ro" not in mode.split(",")
                points[destination] = {**point, "RW": writable, "Mode": "", "CopyData": False}
                mounts.append(MountPoint(destination, point["Source"], writable, point.get("Propagation") or "",
                                         volume=point.get("Name") if point.get("Type") == "volume" else None,
                                         copy_data=False))
        return mounts, points

    @staticmethod
    def copy_up(mounts, rootfs: str) -> None:
        """The image's content at each volume's destination into the volume, when it is empty."""
        for mount in mounts:
            if mount.volume is None or not mount.copy_data or os.listdir(mount.source):
                continue
            inside = os.path.join(rootfs, mount.destination.lstrip("/"))
            if os.path.isdir(inside) and not os.path.islink(inside):
                copied = subprocess.run(["cp", "-a", "--", inside + "/.", mount.source], capture_output=True,
                                        text=True, check=False)
                if copied.returncode != 0:
                    raise System(f"copying the image's {mount.destination} into its volume: "
                                 f"{copied.stderr.strip()}")

    def removed(self, mount_points: dict) -> None:
        """The container is gone with its volumes: its anonymous ones go too, but
        not one it was given by name (as dockerd's removeMountPoints skips a
        mount whose spec has a source: compose recreates a container with its
        predecessor's anonymous volumes so, and `down -v` leaves them)."""
        self.provider.remove_anonymous([point["Name"] for point in mount_points.values()
                                        if point.get("Type") == "volume" and not point.get("Named")])

    def starting(self, container_id: str, mount_points: dict) -> None:
        for point in mount_points.values():
            if point.get("Type") == "volume":
                self.provider.mount(point["Name"], container_id, point["Destination"], point["RW"])

    @contextlib.contextmanager
    def copying(self, record) -> Iterator[None]:
        """A ``docker cp``'s use of the container's volumes, as dockerd's
        mountVolumes and DetachAndUnmount: each mounted (when it has driver
        options) with its "mount" event, and its "unmount" after; a running
        container keeps its volumes mounted."""
        self.starting(record.id, record.mount_points)
        try:
            yield
        finally:
            if record.state.running:
                for name in _volume_names(record.mount_points):
                    self.provider.unmount(name, record.id, last_user=False)
            else:
                self.stopped(record.id, record.mount_points)

    def stopped(self, container_id: str, mount_points: dict) -> None:
        """The container's volumes released; the last user of one unmounts it."""
        in_use = {name for record in self.running() if record.id != container_id
                  for name in _volume_names(record.mount_points)}
        for name in _volume_names(mount_points):
            self.provider.unmount(name, container_id, name not in in_use)


def _volume_names(mount_points: dict) -> list[str]:
    return [p["Name"] for p in mount_points.values() if p.get("Type") == "volume"]
