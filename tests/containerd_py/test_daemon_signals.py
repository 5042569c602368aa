"""containerd_py.daemon_support.Signals: a SIGTERM the kernel gives another thread still
wakes the main thread's wait (a threading.Event wait never woke for one:
a third of the engine's stops hung)."""
import subprocess
import sys

SCRIPT = """
import signal, threading, time
from containerd_py.daemon_support import Signals

signals = Signals()
main_thread = threading.get_native_id()
about_to_wait = threading.Event()

def main_thread_state():
    with open(f"/proc/self/task/{main_thread}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]

def signal_this_thread():
    about_to_wait.wait()
    while main_thread_state() != "S":  # blocked in the wait
        time.sleep(0.01)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

threading.Thread(target=signal_this_thread, daemon=True).start()
about_to_wait.set()
print(signals.wait())
"""


def test_a_signal_taken_by_another_thread_ends_the_wait():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert (out.returncode, out.stdout, out.stderr) == (0, "terminated\n", "")


def test_sigint_is_named_as_dockerd_names_it():
    script = "import os, signal\nfrom containerd_py.daemon_support import Signals\ns = Signals()\nos.kill(os.getpid(), signal.SIGINT)\n" \
             "print(s.wait())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout == "interrupt\n", out.stderr
