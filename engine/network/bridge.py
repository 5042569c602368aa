"""The bridge driver: the kernel side of bridge networks. Links and addresses
go through netlink, NAT and isolation through the engine's nftables table,
which is applied whole from what the driver holds at every change — so the
rules always match the networks and published ports that exist, and a
restart's reconcile is one more apply."""
import logging
import threading
from typing import Iterable

from engine.network.types import BridgeNetwork, Endpoint, PortBinding

log = logging.getLogger(__name__)


def host_veth(endpoint_id: str) -> str:
    """The host end of an endpoint's veth, named from its ID (found again after a restart)."""
    return "veth" + endpoint_id[:7]


class BridgeDriver:
    """``kernel`` is the netlink module (or a fake with the same names:
    ``Netlink``, ``create_netns``, ``delete_netns``, ``set_sysctl``);
    ``firewall`` has ``apply(networks, ports)``."""

    def __init__(self, kernel, firewall):
        self.kernel, self.firewall = kernel, firewall
        self._lock = threading.Lock()
        self._networks: dict[str, BridgeNetwork] = {}
        self._ports: dict[str, tuple[PortBinding, ...]] = {}  # container ID -> its published ports
        self._forwarding = False
        # The rules are applied only once restore() knows the running containers' ports:
        # a table applied before (networks made again at start) would drop their DNAT for a while.
        self._restored = False

    # -- networks ----------------------------------------------------------------------

    def restore(self, networks: Iterable[BridgeNetwork], ports: dict[str, Iterable[PortBinding]]) -> None:
        """At engine start: every network's bridge up (made again if a reboot
        or a crash lost it), the rules applied from what the records say."""
        with self._lock:
            for net in networks:
                self._bridge_up(net)
                self._networks[net.network_id] = net
            self._ports = {cid: tuple(bindings) for cid, bindings in ports.items() if bindings}
            self._restored = True
            self._apply()

    def create_network(self, net: BridgeNetwork) -> None:
        """The bridge with its gateway address, and the network's rules; a
        failure leaves neither."""
        with self._lock:
            self._bridge_up(net)
            self._networks[net.network_id] = net
            try:
                self._apply()
            except OSError:
                del self._networks[net.network_id]
                self._delete_bridge(net)
                raise

    def delete_network(self, net: BridgeNetwork) -> None:
        with self._lock:
            self._networks.pop(net.network_id, None)
            self._apply()
            self._delete_bridge(net)

    def _bridge_up(self, net: BridgeNetwork) -> None:
        if not self._forwarding:
            self.kernel.set_sysctl("net.ipv4.ip_forward", "1")
            self._forwarding = True
        with self.kernel.Netlink.here() as links:
            if not links.link_exists(net.bridge):
                links.create_bridge(net.bridge, mtu=net.mtu)
            links.add_address(net.bridge, f"{net.gateway}/{net.subnet.prefixlen}")
            links.set_up(net.bridge)
        # published ports answered from the host's own 127.0.0.1 are routed to the bridge
        self.kernel.set_sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")

    def _delete_bridge(self, net: BridgeNetwork) -> None:
        with self.kernel.Netlink.here() as links:
            links.delete_link(net.bridge)

    # -- endpoints ---------------------------------------------------------------------

    def join(self, net: BridgeNetwork, endpoint: Endpoint, sandbox: str, ifname: str, gateway: bool) -> None:
        """The endpoint's veth: the host end on the bridge, the other inside
        the sandbox as ``ifname`` with its address (and the default route
        through this network's gateway when ``gateway``)."""
        with self.kernel.Netlink.here() as links:
            links.create_veth(endpoint.host_veth, ifname, sandbox, mtu=net.mtu)
            try:
                links.set_master(endpoint.host_veth, net.bridge)
                links.set_hairpin(endpoint.host_veth)  # its own published ports through the host's addresses
                links.set_up(endpoint.host_veth)
                with self.kernel.Netlink.inside(sandbox) as inner:
                    inner.set_mac(ifname, endpoint.mac)
                    inner.add_address(ifname, str(endpoint.address))
                    inner.set_up(ifname)
                    if gateway:
                        inner.add_default_route(str(endpoint.gateway))
            except OSError:
                links.delete_link(endpoint.host_veth)
                raise

    def leave(self, host_veth: str) -> None:
        """Deleting the host end deletes its peer in the sandbox."""
        with self.kernel.Netlink.here() as links:
            links.delete_link(host_veth)

    # -- published ports ---------------------------------------------------------------

    def publish(self, container_id: str, bindings: Iterable[PortBinding]) -> None:
        with self._lock:
            before = self._ports.get(container_id)
            self._ports[container_id] = tuple(bindings)
            try:
                self._apply()
            except OSError:
                self._restore_entry(container_id, before)
                raise

    def unpublish(self, container_id: str) -> None:
        with self._lock:
            if self._ports.pop(container_id, None):
                self._apply()

    def _restore_entry(self, container_id: str, before) -> None:
        if before is None:
            self._ports.pop(container_id, None)
        else:
            self._ports[container_id] = before

    def _apply(self) -> None:
        if not self._restored:
            return
        self.firewall.apply(list(self._networks.values()),
                            [binding for bindings in self._ports.values() for binding in bindings])

    # -- sandboxes ---------------------------------------------------------------------

    def create_sandbox(self, path: str) -> None:
        """A network namespace of the container's own, bind-mounted at ``path``
        so that it outlives the engine and the runtime joins it by path."""
        self.kernel.create_netns(path)

    def sandboxes(self, directory: str) -> list[str]:
        """The sandboxes made under directory (a restart's sweep of leftovers)."""
        return self.kernel.netns_under(directory)

    def delete_sandbox(self, path: str) -> None:
        """The namespace and every veth end still in it."""
        self.kernel.delete_netns(path)
