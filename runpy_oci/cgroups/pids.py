"""pids: the task limit (pids.max on v1 and v2)."""
from runpy_oci.cgroups.controller import Controller


class Pids(Controller):
    v1 = "pids"
    v2 = "pids"

    def requested(self, res):
        return res.pids if res.pids is not None and res.pids.limit is not None else None

    def set_v1(self, d, p):
        # runc: zero or below means no limit
        d.write("pids.max", p.limit if p.limit > 0 else "max", f"{p.path}.limit")

    set_v2 = set_v1

    def stats(self, d, out):
        limit = d.read_int("pids.max")
        out["pids"] = {"current": d.read_int("pids.current"), "limit": 0 if limit == -1 else limit}


CONTROLLER = Pids()
