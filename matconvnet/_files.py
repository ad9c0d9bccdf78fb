"""Writing files so that nobody ever sees half of one: a temporary file in the same folder,
fsync, then ``os.replace`` over the target (atomic on POSIX and Windows)."""
from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, Union

__all__ = ["atomic_write"]


def atomic_write(path: Union[str, os.PathLike], writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp)`` to write a temporary file beside ``path``, then move it over
    ``path``.  A file already at ``path`` keeps its permissions; on any error the temporary
    file is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _mode(path: str) -> int:
    """The permissions of the file at ``path``, or what a new file gets (0666 & ~umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
