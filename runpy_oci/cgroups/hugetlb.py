"""hugetlb: a byte limit per huge page size."""
import os

from runpy_oci.cgroups.controller import Controller


def _file_size(page_size):
    """The spec's "2MB" is the kernel's "2MB"; "1024KB" becomes "1MB" as in the file names."""
    n, unit = int(page_size[:-2]), page_size[-2:]
    units = ("KB", "MB", "GB", "TB", "PB")
    i = units.index(unit)
    while n >= 1024 and n % 1024 == 0 and i + 1 < len(units):
        n, i = n // 1024, i + 1
    return f"{n}{units[i]}"


class Hugetlb(Controller):
    v1 = "hugetlb"
    v2 = "hugetlb"

    def requested(self, res):
        return res.hugepage_limits or None

    def set_v1(self, d, limits):
        for h in limits:
            d.write(f"hugetlb.{_file_size(h.page_size)}.limit_in_bytes", h.limit, f"{h.path}.limit")

    def set_v2(self, d, limits):
        for h in limits:
            d.write(f"hugetlb.{_file_size(h.page_size)}.max", h.limit, f"{h.path}.limit")

    def stats(self, d, out):
        sizes = sorted({name.split(".")[1] for name in os.listdir(d.path) if name.startswith("hugetlb.")})
        out["hugetlb"] = {}
        for size in sizes:
            if d.version == 1:
                out["hugetlb"][size] = {"usage": d.read_int(f"hugetlb.{size}.usage_in_bytes"),
                                        "max": d.read_int(f"hugetlb.{size}.max_usage_in_bytes"),
                                        "failcnt": d.read_int(f"hugetlb.{size}.failcnt")}
            else:
                out["hugetlb"][size] = {"usage": d.read_int(f"hugetlb.{size}.current"),
                                        "failcnt": d.read_keyed(f"hugetlb.{size}.events").get("max", 0)}


CONTROLLER = Hugetlb()
