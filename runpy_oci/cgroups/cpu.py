"""cpu: shares (v2 weight), CFS quota/period/burst, realtime, idle; throttling stats."""
import errno

from runpy_oci.cgroups.controller import Controller, WriteError, unsupported


def shares_to_weight(shares):
    """runc's mapping of v1 shares [2, 262144] onto v2 weight [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


class Cpu(Controller):
    v1 = "cpu"
    v2 = "cpu"

    def requested(self, res):
        c = res.cpu
        if c is None or all(v is None for v in (c.shares, c.quota, c.burst, c.period, c.realtime_runtime,
                                                 c.realtime_period, c.idle)):
            return None
        return c

    def set_v1(self, d, c):
        if c.shares is not None:
            d.write("cpu.shares", c.shares, f"{c.path}.shares")
        retry_period = False
        if c.period is not None:
            try:
                d.write("cpu.cfs_period_us", c.period, f"{c.path}.period")
            except WriteError as e:
                # runc: a shorter period can be refused while the old quota
                # stands (old quota / new period beyond the parent's); retry
                # it once the new quota is in.
                if e.errno != errno.EINVAL or c.quota is None:
                    raise
                retry_period = True
        if c.quota is not None:
            d.write("cpu.cfs_quota_us", c.quota, f"{c.path}.quota")
        if retry_period:
            d.write("cpu.cfs_period_us", c.period, f"{c.path}.period")
        if c.burst is not None:
            d.write("cpu.cfs_burst_us", c.burst, f"{c.path}.burst")
        if c.realtime_period is not None:
            d.write("cpu.rt_period_us", c.realtime_period, f"{c.path}.realtimePeriod")
        if c.realtime_runtime is not None:
            d.write("cpu.rt_runtime_us", c.realtime_runtime, f"{c.path}.realtimeRuntime")
        if c.idle is not None:
            d.write("cpu.idle", c.idle, f"{c.path}.idle")

    def set_v2(self, d, c):
        if c.shares is not None:
            d.write("cpu.weight", shares_to_weight(c.shares), f"{c.path}.shares")
        if c.period is not None or c.quota is not None:
            # cpu.max is "QUOTA [PERIOD]"; a lone quota keeps the period, so
            # a lone period must restate the current quota.
            quota = c.quota if c.quota is not None else (d.read("cpu.max") or "max").split()[0]
            text = "max" if quota in (-1, 0, "max") else str(quota)
            if c.period is not None:
                text += f" {c.period}"
            d.write("cpu.max", text, f"{c.path}.{'quota' if c.quota is not None else 'period'}")
        if c.burst is not None:
            d.write("cpu.max.burst", c.burst, f"{c.path}.burst")
        for value, key in ((c.realtime_runtime, "realtimeRuntime"), (c.realtime_period, "realtimePeriod")):
            if value is not None:
                unsupported(f"{c.path}.{key}", "cgroup v2 has no realtime CPU limits")
        if c.idle is not None:
            d.write("cpu.idle", c.idle, f"{c.path}.idle")

    def stats(self, d, out):
        st = d.read_keyed("cpu.stat")
        cpu = out.setdefault("cpu", {})
        if d.version == 1:
            cpu["throttling"] = {"periods": st.get("nr_periods", 0), "throttled_periods": st.get("nr_throttled", 0),
                                 "throttled_time": st.get("throttled_time", 0)}
        else:
            cpu["usage"] = {"total": st.get("usage_usec", 0) * 1000, "kernel": st.get("system_usec", 0) * 1000,
                            "user": st.get("user_usec", 0) * 1000}
            cpu["throttling"] = {"periods": st.get("nr_periods", 0), "throttled_periods": st.get("nr_throttled", 0),
                                 "throttled_time": st.get("throttled_usec", 0) * 1000}


CONTROLLER = Cpu()
