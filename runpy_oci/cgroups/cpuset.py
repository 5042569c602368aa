"""cpuset: ``cpu.cpus`` and ``cpu.mems`` (the same files on v1 and v2)."""
from runpy_oci.cgroups.controller import Controller


def _cpu_list(text):
    """ "0-2,4" -> [0, 1, 2, 4], as runc's stats list them."""
    out = []
    for part in (text or "").split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


class Cpuset(Controller):
    v1 = "cpuset"
    v2 = "cpuset"

    def requested(self, res):
        c = res.cpu
        return c if c is not None and (c.cpus is not None or c.mems is not None) else None

    def set_v1(self, d, c):
        # mems first: a cpuset with cpus but no mems refuses tasks either way,
        # but the kernel checks each against the parent on its own.
        if c.mems is not None:
            d.write("cpuset.mems", c.mems, f"{c.path}.mems")
        if c.cpus is not None:
            d.write("cpuset.cpus", c.cpus, f"{c.path}.cpus")

    set_v2 = set_v1

    def stats(self, d, out):
        out["cpuset"] = {"cpus": _cpu_list(d.read("cpuset.cpus") or d.read("cpuset.cpus.effective")),
                         "mems": _cpu_list(d.read("cpuset.mems") or d.read("cpuset.mems.effective"))}


CONTROLLER = Cpuset()
