"""What files weigh, as dockerd weighs them (its pkg/directory.Size)."""
import os


def files_size(path: str) -> int:
    """The sizes of everything under ``path`` but directories, a hard-linked
    inode once (an overlay whiteout, a 0/0 device, weighs nothing). A file
    removed meanwhile (a running container's) is left out."""
    seen, total = set(), 0
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
