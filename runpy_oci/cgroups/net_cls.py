"""net_cls (v1 only): the class id tagged on the container's packets."""
from runpy_oci.cgroups.controller import Controller


class NetCls(Controller):
    v1 = "net_cls"

    def requested(self, res):
        n = res.network
        return n if n is not None and n.class_id is not None else None

    def set_v1(self, d, n):
        d.write("net_cls.classid", n.class_id, f"{n.path}.classID")


CONTROLLER = NetCls()
