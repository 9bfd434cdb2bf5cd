"""recipes/utils/stamp.sh: a stamped work dir copied (cp -a), moved, or run from another checkout
re-runs nothing; a real change of an input still re-runs the steps that read it.

The independent answer is a log the steps themselves append to (which commands ran), and the
.scp contents: a copy must read its own archives. The mini recipe has what the commands recipe
has: a conf file of the checkout given by absolute path (as $recipe_dir/conf/...), a features
step writing an archive and a feats.scp of absolute paths (as make-mfcc), a step reading the
whole data dir, and a shell-function step.
"""

import os
import shutil
import subprocess

from stamp_helpers import PRELUDE, make_checkout, run_recipe

RECIPE = PRELUDE + r"""
make_feats() {
  mkdir -p mfcc
  tr a-z A-Z < data/x/wav.scp > mfcc/raw.ark
  echo "u1 $(pwd -P)/mfcc/raw.ark:0" > data/x/feats.scp
  echo make_feats >> ran.txt
}
train() {
  mkdir -p exp/m
  # reads the features through feats.scp, as every kaldilite verb does
  cat "$(cut -d' ' -f2 data/x/feats.scp | sed 's/:0$//')" "$2" > exp/m/final.mdl
  echo train >> ran.txt
}
step exp/feats/.stamp data/x/wav.scp "$KALDILITE_REPO/conf/a.conf" --out data/x/feats.scp -- make_feats
step exp/m/.stamp data/x "$KALDILITE_REPO/conf/a.conf" --out exp/m/final.mdl -- \
  train --config "$KALDILITE_REPO/conf/a.conf"
"""


def run(work, checkout):
    return run_recipe(RECIPE, work, checkout)


def built(tmp_path):
    checkout = make_checkout(tmp_path / "repo", {"a.conf": "--num-ceps=13\n"})
    work = tmp_path / "work"
    (work / "data" / "x").mkdir(parents=True)
    (work / "data" / "x" / "wav.scp").write_text("u1 /corpus/u1.wav\n")
    assert run(work, checkout)[0] == ["make_feats", "train"]
    assert run(work, checkout)[0] == []  # nothing changed
    return checkout, work


def copy_a(src, dst):
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    return dst


def test_a_copy_re_runs_nothing_and_reads_its_own_features(tmp_path):
    checkout, work = built(tmp_path)
    copy = copy_a(work, tmp_path / "work2")
    ran, stdout = run(copy, checkout)
    assert ran == [], stdout
    assert "up to date: exp/m/.stamp" in stdout
    assert (copy / "data/x/feats.scp").read_text() == f"u1 {copy.resolve()}/mfcc/raw.ark:0\n"
    assert (work / "data/x/feats.scp").read_text() == f"u1 {work.resolve()}/mfcc/raw.ark:0\n"  # untouched
    assert run(copy, checkout)[0] == []


def test_a_moved_dir_run_from_another_checkout_re_runs_nothing(tmp_path):
    checkout, work = built(tmp_path)
    moved = tmp_path / "elsewhere" / "w"
    moved.parent.mkdir()
    shutil.move(str(work), str(moved))
    other_checkout = copy_a(checkout, tmp_path / "repo_clone")
    ran, stdout = run(moved, other_checkout)
    assert ran == [], stdout
    assert str(moved.resolve()) in (moved / "data/x/feats.scp").read_text()


def test_real_changes_still_re_run_the_steps_that_read_them(tmp_path):
    checkout, work = built(tmp_path)
    copy = copy_a(work, tmp_path / "work2")
    (copy / "data/x/wav.scp").write_text("u1 /corpus/other.wav\n")
    assert run(copy, checkout)[0] == ["make_feats", "train"]
    assert "OTHER" in (copy / "exp/m/final.mdl").read_text()
    other_checkout = copy_a(checkout, tmp_path / "repo_clone")
    (other_checkout / "conf" / "a.conf").write_text("--num-ceps=20\n")
    assert run(copy, other_checkout)[0] == ["make_feats", "train"]
    # an archive rewritten with the same size but a new mtime: the steps reading it re-run
    ark = copy / "mfcc/raw.ark"
    os.utime(ark, (ark.stat().st_atime, ark.stat().st_mtime + 5))
    assert run(copy, other_checkout)[0] == ["train"]
    # an output deleted: its step runs again
    (copy / "exp/m/final.mdl").unlink()
    assert run(copy, other_checkout)[0] == ["train"]


LEGACY_STEP = PRELUDE + r"""
make_out() { cat "$KALDILITE_REPO/recipes/conf/a.conf" > out.txt; echo make_out >> ran.txt; }
conf="$KALDILITE_REPO/recipes/conf/a.conf"
step exp/.stamp "$conf" --out out.txt -- make_out --config "$conf"
"""


def _first_format_stamp(checkout, conf, out):
    """A stamp as the first stamp.sh wrote it: raw paths, a file's sum = sha1 of `sha1sum < FILE`'s line."""
    import hashlib

    inner = hashlib.sha1(conf.read_bytes()).hexdigest() + "  -\n"
    stat = out.stat()
    body = "make_out () \n{ \n" \
           '    cat "$KALDILITE_REPO/recipes/conf/a.conf" > out.txt;\n    echo make_out >> ran.txt\n}'
    return (f"kaldilite 9.9\n{conf} {hashlib.sha1(inner.encode()).hexdigest()}\n"
            f"command make_out --config {checkout}/recipes/conf/a.conf\n{body}\n"
            f"out out.txt {stat.st_size} {int(stat.st_mtime)}\n")


def test_a_first_format_stamp_from_another_checkout_is_accepted_and_rewritten(tmp_path):
    old_checkout = make_checkout(tmp_path / "old_repo", {"a.conf": "--num-ceps=13\n"})
    (old_checkout / "recipes" / "conf").mkdir(parents=True)
    conf = old_checkout / "recipes" / "conf" / "a.conf"
    conf.write_text("--beam=13\n")
    work = tmp_path / "work"
    (work / "exp").mkdir(parents=True)
    (work / "out.txt").write_text("--beam=13\n")
    (work / "exp" / ".stamp").write_text(_first_format_stamp(old_checkout, conf, work / "out.txt"))
    new_checkout = copy_a(old_checkout, tmp_path / "new_repo")

    def run_step():
        return run_recipe(LEGACY_STEP, work, new_checkout)[0]

    assert run_step() == []
    stamp = (work / "exp" / ".stamp").read_text()
    assert stamp.startswith("kaldilite 9.9 stamp 2\n") and "@repo@/recipes/conf/a.conf" in stamp
    assert run_step() == []
    (new_checkout / "recipes" / "conf" / "a.conf").write_text("--beam=15\n")  # a real change still runs it
    assert run_step() == ["make_out"]
