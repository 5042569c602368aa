"""blkio (v2: io): proportional weights and per-device throttles."""
from runpy_oci.cgroups.controller import Controller, unsupported
from runpy_oci.spec.resources import THROTTLES


def weight_v2(weight):
    """runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000]."""
    return 1 + (weight - 10) * 9999 // 990


class Blkio(Controller):
    v1 = "blkio"
    v2 = "io"

    def requested(self, res):
        return res.block_io

    def set_v1(self, d, b):
        # Kernels without CFQ have only the BFQ files (runc falls back the same way).
        bfq = not d.has("blkio.weight") and d.has("blkio.bfq.weight")
        weight = "blkio.bfq.weight" if bfq else "blkio.weight"
        if b.weight is not None:
            d.write(weight, b.weight, f"{b.path}.weight")
        if b.leaf_weight is not None:
            d.write("blkio.leaf_weight", b.leaf_weight, f"{b.path}.leafWeight")
        for dev in b.weight_device:
            if dev.weight is not None:
                d.write(weight if bfq else "blkio.weight_device", f"{dev.major}:{dev.minor} {dev.weight}",
                        f"{dev.path}.weight")
            if dev.leaf_weight is not None:
                d.write("blkio.leaf_weight_device", f"{dev.major}:{dev.minor} {dev.leaf_weight}",
                        f"{dev.path}.leafWeight")
        for key, v1_file, _ in THROTTLES:
            for dev in b.throttles.get(key, ()):
                d.write(v1_file, f"{dev.major}:{dev.minor} {dev.rate}", f"{dev.path}.rate")

    def set_v2(self, d, b):
        bfq = d.has("io.bfq.weight")
        if b.weight is not None:
            if bfq:
                d.write("io.bfq.weight", b.weight, f"{b.path}.weight")
            else:
                d.write("io.weight", f"default {weight_v2(b.weight)}", f"{b.path}.weight")
        if b.leaf_weight is not None:
            unsupported(f"{b.path}.leafWeight", "cgroup v2 has no leaf weights")
        for dev in b.weight_device:
            if dev.weight is not None:
                value = dev.weight if bfq else weight_v2(dev.weight)
                d.write("io.bfq.weight" if bfq else "io.weight", f"{dev.major}:{dev.minor} {value}", f"{dev.path}.weight")
        for key, _, v2_key in THROTTLES:
            for dev in b.throttles.get(key, ()):
                d.write("io.max", f"{dev.major}:{dev.minor} {v2_key}={dev.rate or 'max'}", f"{dev.path}.rate")

    def stats(self, d, out):
        if d.version == 1:
            def entries(name):
                found = []
                for line in (d.read(name) or "").splitlines():
                    parts = line.split()
                    if len(parts) == 3 and ":" in parts[0]:
                        major, minor = parts[0].split(":")
                        found.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
                return found
            out["blkio"] = {"ioServiceBytesRecursive": entries("blkio.throttle.io_service_bytes_recursive"),
                            "ioServicedRecursive": entries("blkio.throttle.io_serviced_recursive")}
            return
        service_bytes, serviced = [], []
        for line in (d.read("io.stat") or "").splitlines():
            dev, *pairs = line.split()
            major, minor = (int(n) for n in dev.split(":"))
            values = dict(p.split("=", 1) for p in pairs)
            for key, op, into in (("rbytes", "Read", service_bytes), ("wbytes", "Write", service_bytes),
                                  ("rios", "Read", serviced), ("wios", "Write", serviced)):
                if key in values:
                    into.append({"major": major, "minor": minor, "op": op, "value": int(values[key])})
        out["blkio"] = {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}


CONTROLLER = Blkio()
