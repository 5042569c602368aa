"""An exec's process is born in the init's pid and time namespaces, which the
runtime enters for its children only around one fork (runpy_oci.exec); where
one is refused, none stays entered and stage 1 forks it, as before."""
import os
from types import SimpleNamespace

from runpy_oci import exec as exec_verb
from runpy_oci import kernel as k


class RefusingTime:
    """setns(2) that records its flags and refuses the time namespace."""

    def __init__(self):
        self.flags = []

    def setns(self, fd, flag):
        self.flags.append(flag)
        if flag == k.CLONE_NEWTIME:
            raise PermissionError(1, "Operation not permitted")


def test_a_refused_namespace_leaves_none_entered(monkeypatch):
    kernel = RefusingTime()
    monkeypatch.setattr(k, "get", lambda: kernel)
    real_stat = os.stat
    # every namespace of the "init" differs from ours (its path names it)
    monkeypatch.setattr(os, "stat", lambda path, *a, **kw: SimpleNamespace(st_ino=hash(str(path)))
                        if "/ns/" in str(path) else real_stat(path, *a, **kw))
    fds_before = sorted(os.listdir("/proc/self/fd"))
    assert exec_verb._enter_for_children(os.getpid()) is None
    # pid entered, time refused, then back into our own pid namespace
    assert kernel.flags == [k.CLONE_NEWPID, k.CLONE_NEWTIME, k.CLONE_NEWPID]
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
