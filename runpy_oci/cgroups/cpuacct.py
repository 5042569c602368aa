"""cpuacct (v1 only): no limits, the CPU usage counters of ``events --stats``
(v2 has them in cpu.stat, read by the cpu controller)."""
from runpy_oci.cgroups.controller import Controller

USER_HZ_NS = 10_000_000  # cpuacct.stat counts in USER_HZ (100 per second)


class Cpuacct(Controller):
    v1 = "cpuacct"

    def requested(self, res):
        return None

    def stats(self, d, out):
        if d.version != 1:
            return
        ticks = d.read_keyed("cpuacct.stat")

        def per_cpu(name):
            return [int(n) for n in (d.read(name) or "").split()]
        out.setdefault("cpu", {})["usage"] = {
            "total": d.read_int("cpuacct.usage"), "percpu": per_cpu("cpuacct.usage_percpu"),
            "percpu_kernel": per_cpu("cpuacct.usage_percpu_sys"), "percpu_user": per_cpu("cpuacct.usage_percpu_user"),
            "kernel": ticks.get("system", 0) * USER_HZ_NS, "user": ticks.get("user", 0) * USER_HZ_NS,
        }


CONTROLLER = Cpuacct()
