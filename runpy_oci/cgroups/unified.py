"""``linux.resources.unified``: cgroup v2 files written as given (v2 only)."""
from runpy_oci.cgroups.controller import Controller
from runpy_oci.spec.fields import join


class Unified(Controller):
    v2 = ""

    def requested(self, res):
        return res if res.unified else None

    def set_v2(self, d, res):
        for name, value in res.unified.items():
            d.write(name, value, join(join(res.path, "unified"), name))


CONTROLLER = Unified()
