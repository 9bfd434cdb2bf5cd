"""Atomic output: write to a temporary file beside the target, then rename over it.

An interrupted step therefore leaves either the old file or no file, never half of one.
"""

import contextlib
import os
import tempfile

# mkstemp creates files readable by the owner only; outputs should get the usual permissions
# (what open() would give under the process umask), so read the umask once at import.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's directory; rename it to `path` on success.

    Use this for writers that want a file name (kaldi_io, OpenFst's `write`, numpy.save).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", encoding="utf-8"):
    """Open a temporary file for writing that replaces `path` only when the block succeeds."""
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as handle:
            yield handle
