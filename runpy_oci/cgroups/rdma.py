"""rdma: HCA handle and object limits per RDMA device (rdma.max on v1 and v2)."""
from runpy_oci.cgroups.controller import Controller


class Rdma(Controller):
    v1 = "rdma"
    v2 = "rdma"

    def requested(self, res):
        return res.rdma if res.rdma is not None and res.rdma.limits else None

    def set_v1(self, d, r):
        for device, (handles, objects) in r.limits.items():
            parts = [device]
            if handles is not None:
                parts.append(f"hca_handle={handles}")
            if objects is not None:
                parts.append(f"hca_object={objects}")
            d.write("rdma.max", " ".join(parts), f"{r.path}.{device}")

    set_v2 = set_v1


CONTROLLER = Rdma()
