"""freezer: pause and resume every process of the container at once
(freezer.state on v1, cgroup.freeze on v2)."""
import time

from runpy_oci.cgroups.controller import Controller
from runpy_oci.errors import RuntimeFailure


class Freezer(Controller):
    v1 = "freezer"
    v2 = ""

    def requested(self, res):
        return None  # not a resource: driven by pause/resume

    def set_state(self, d, frozen, timeout=10.0):
        """Freeze or thaw, and wait until the kernel says it is done."""
        if d.version == 1:
            want = "FROZEN" if frozen else "THAWED"
            d.write("freezer.state", want, "freezer.state")

            def done():
                return d.read("freezer.state") == want
        else:
            d.write("cgroup.freeze", 1 if frozen else 0, "cgroup.freeze")

            def done():
                return d.read_keyed("cgroup.events").get("frozen") == (1 if frozen else 0)
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"the container's cgroup did not become {'frozen' if frozen else 'thawed'}")
            if d.version == 1 and frozen:
                d.write("freezer.state", "FROZEN", "freezer.state")  # v1 may stall in FREEZING; nudge it
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


CONTROLLER = Freezer()
