"""net_prio (v1 only): a priority per network interface."""
from runpy_oci.cgroups.controller import Controller


class NetPrio(Controller):
    v1 = "net_prio"

    def requested(self, res):
        n = res.network
        return n if n is not None and n.priorities else None

    def set_v1(self, d, n):
        for i, (name, prio) in enumerate(n.priorities):
            d.write("net_prio.ifpriomap", f"{name} {prio}", f"{n.path}.priorities[{i}]")


CONTROLLER = NetPrio()
