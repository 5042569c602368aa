import pytest

from runpy_oci.errors import RuntimeFailure
from runpy_oci.lifecycle import parse_signal


@pytest.mark.parametrize("text,num", [
    ("TERM", 15), ("SIGTERM", 15), ("term", 15), ("15", 15), ("KILL", 9), ("9", 9),
    ("SIGUSR1", 10), ("HUP", 1), ("RTMIN", 34), ("RTMIN+3", 37), ("SIGRTMAX-1", 63),
])
def test_signal_forms(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["BOGUS", "0", "65", "RTMIN+40", "SIG"])
def test_unknown_signals(text):
    with pytest.raises(RuntimeFailure, match="unknown signal"):
        parse_signal(text)
