"""Atomic output: write to a temporary file beside the target, then rename over it.

An interrupted step therefore leaves either the old file or no file, never half of one.
`atomic_dir` does the same for a directory of outputs (a graph dir): the files are written into
a fresh directory beside the target, which then takes the target's place in one rename.
"""

import contextlib
import errno
import os
import stat

# Temporary names come from os.urandom, created with O_EXCL as tempfile.mkstemp creates them:
# importing tempfile (and the random module it pulls in) costs ~1 ms of CPU, 1% of a short
# verb such as mkgraph.
_TEMP_ATTEMPTS = 100


def _make_temp(directory, prefix, suffix, create):
    """`create(name)` for a new unique name `directory/prefix<random hex>suffix`; returns the name."""
    for _ in range(_TEMP_ATTEMPTS):
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            create(name)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, f"no unused temporary name {prefix}*{suffix}", directory)


def _create_empty_file(name):
    """An empty file with the usual permissions (0666 less the umask)."""
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's directory; rename it to `path` on success.

    Use this for writers that want a file name (kaldi_io, OpenFst's `write`, numpy.save).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _make_temp(directory, "." + os.path.basename(path) + ".", ".tmp", _create_empty_file)
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


@contextlib.contextmanager
def atomic_dir(path, owned=()):
    """Yield a new empty directory beside `path`; when the block succeeds it becomes `path` whole.

    A reader of `path` sees the old directory or the new one, never a mix or a half-written one:
    the new directory takes its place in one rename (on Linux an atomic exchange of the two, so
    `path` never goes missing either; elsewhere the old one is renamed away first). On failure
    the new directory is removed and `path` is left as it was. Files of an existing `path` that
    the block did not write are carried over (hard links) unless `owned` lists their relative
    paths ('phones/silence.int'): those are the writer's outputs, so one it no longer writes is
    stale and goes (e.g. a graph's words/fillers.txt when the new grammar has no fillers), while
    what other tools put there (a calibrated rejection.json) stays. Writes inside the directory
    need no per-file atomicity (and pay no per-file rename).
    """
    path = os.path.realpath(os.fspath(path))  # a symlinked dir: replace what it points to, not the link
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    old_mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isdir(path) else None
    new = _make_temp(parent, f".{name}.", ".tmp", os.mkdir)
    try:
        if old_mode is not None:
            os.chmod(new, old_mode)
        yield new
        if old_mode is None:
            os.rename(new, path)  # fails if something other than a directory is in the way
            return
        _carry_over(path, new, frozenset(owned))
        if not _exchange(new, path):
            _replace_dir_in_two_renames(new, path)
        _remove_tree(new)  # now the old directory
    except BaseException:
        if os.path.isdir(new):
            _remove_tree(new)
        raise


def _carry_over(old, new, owned):
    """Hard-link into `new` the entries of `old` that `new` lacks and that are not in `owned`."""
    for directory, subdirs, files in os.walk(old):
        rel_dir = os.path.relpath(directory, old)
        target_dir = new if rel_dir == "." else os.path.join(new, rel_dir)
        for entry in list(subdirs) + files:
            rel = entry if rel_dir == "." else f"{rel_dir}/{entry}"
            source, target = os.path.join(directory, entry), os.path.join(target_dir, entry)
            if os.path.islink(source):
                if entry in subdirs:
                    subdirs.remove(entry)  # not descended into: the link itself is carried
                if rel not in owned and not os.path.lexists(target):
                    os.makedirs(target_dir, exist_ok=True)
                    os.symlink(os.readlink(source), target)
            elif entry in subdirs:
                continue  # its files are visited (and their directories made) by the walk
            elif rel not in owned and not os.path.lexists(target):
                os.makedirs(target_dir, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:  # a file system without hard links
                    import shutil

                    shutil.copy2(source, target)


def _exchange(a, b):
    """Swap two directory entries atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not glibc >= 2.28 (or not Linux)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # kernel or file system without it
        return False
    raise OSError(code, os.strerror(code), a, None, b)


def _replace_dir_in_two_renames(new, path):
    """`path` <- `new`, leaving the old `path` at `new`'s name (`path` is briefly absent)."""
    aside = new + ".old"
    os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(aside, path)
        raise
    os.rename(aside, new)


def _remove_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
