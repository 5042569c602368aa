"""Small files read as text where "absent" and "empty" mean the same: the
host's /etc files, /proc and cgroup files that come and go with processes."""


def read_or_empty(path: str) -> str:
    """The file's text, or "" when it cannot be read (gone, or never there)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
