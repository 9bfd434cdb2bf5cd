"""`atomic_dir` (and the temporary files of `atomic_path`): a directory of outputs appears whole or
not at all, replaces an existing one in one step, and keeps what other tools put there.

The expected directory contents are written out by hand in each test.
"""

import os
import stat

import pytest

from kaldilite.utils import atomic
from kaldilite.utils.atomic import atomic_dir, atomic_path


def tree_of(path):
    """{relative path: file text} of every file under `path` (symlinks as 'link -> target')."""
    out = {}
    for directory, subdirs, files in os.walk(path):
        for name in files + [d for d in subdirs if os.path.islink(os.path.join(directory, d))]:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, path)
            out[rel] = f"link -> {os.readlink(full)}" if os.path.islink(full) else open(full).read()
    return out


def leftovers(parent, name):
    return sorted(entry for entry in os.listdir(parent) if entry.startswith(f".{name}."))


def write(root, files):
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as handle:
            handle.write(text)


def test_a_new_directory_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "graph"
    with atomic_dir(target) as tmp:
        write(tmp, {"HCLG.fst": "g", "phones/silence.int": "1\n"})
        assert not target.exists()  # nothing visible while writing
    assert tree_of(target) == {"HCLG.fst": "g", "phones/silence.int": "1\n"}
    assert leftovers(tmp_path, "graph") == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask  # what mkdir gives


def test_a_failure_mid_write_leaves_no_directory_and_no_temporary(tmp_path):
    target = tmp_path / "graph"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_dir(target) as tmp:
            write(tmp, {"HCLG.fst": "half", "phones/silence.int": "1\n"})
            raise RuntimeError("disk full")
    assert not target.exists()
    assert leftovers(tmp_path, "graph") == []


def test_a_failure_while_replacing_leaves_the_old_directory_as_it_was(tmp_path):
    target = tmp_path / "graph"
    old = {"HCLG.fst": "old", "words.txt": "a 1\n", "phones/silence.int": "1\n"}
    write(target, old)
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target, owned=["HCLG.fst", "words.txt"]) as tmp:
            write(tmp, {"HCLG.fst": "new"})
            raise KeyboardInterrupt
    assert tree_of(target) == old
    assert leftovers(tmp_path, "graph") == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_replacing_keeps_foreign_files_and_drops_stale_owned_ones(tmp_path, monkeypatch, exchange):
    if not exchange:  # the fallback where renameat2 is missing (non-Linux, old glibc)
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "graph"
    write(target, {"HCLG.fst": "old", "words/fillers.txt": "<unk>\n", "rejection.json": "{}",
                   "phones/silence.int": "1\n", "phones/notes.txt": "mine"})
    os.symlink("HCLG.fst", target / "latest")
    os.chmod(target, 0o750)
    owned = ["HCLG.fst", "words/fillers.txt", "phones/silence.int"]
    with atomic_dir(target, owned=owned) as tmp:
        write(tmp, {"HCLG.fst": "new", "phones/silence.int": "2\n"})
    # new outputs win; owned files not written again are stale and gone; others' files stay
    assert tree_of(target) == {"HCLG.fst": "new", "phones/silence.int": "2\n", "rejection.json": "{}",
                               "phones/notes.txt": "mine", "latest": "link -> HCLG.fst"}
    assert not (target / "words").exists()  # only files are carried, so no empty words/
    assert stat.S_IMODE(target.stat().st_mode) == 0o750  # the directory keeps its permissions
    assert leftovers(tmp_path, "graph") == []


def test_a_symlinked_directory_is_replaced_behind_its_link(tmp_path):
    real = tmp_path / "store" / "graph"
    write(real, {"HCLG.fst": "old"})
    (tmp_path / "graph").symlink_to(real)
    with atomic_dir(tmp_path / "graph", owned=["HCLG.fst"]) as tmp:
        write(tmp, {"HCLG.fst": "new"})
    assert (tmp_path / "graph").is_symlink()
    assert tree_of(real) == {"HCLG.fst": "new"}


def test_atomic_path_temporaries_get_the_permissions_open_would_give(tmp_path):
    umask = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            assert os.path.basename(tmp).startswith(".out.txt.") and tmp.endswith(".tmp")
            with open(tmp, "w") as handle:
                handle.write("x")
        open(tmp_path / "plain.txt", "w").close()
    finally:
        os.umask(umask)
    assert (tmp_path / "out.txt").read_text() == "x"
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert leftovers(tmp_path, "out.txt") == []
