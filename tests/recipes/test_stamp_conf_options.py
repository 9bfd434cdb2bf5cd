"""recipes/utils/stamp.sh fingerprints a `*.conf` input by its option lines, as Kaldi's
ParseOptions::ReadConfigFile reads it (a `#` to the end of the line dropped, blanks trimmed, empty
lines skipped): a comment-only edit re-runs nothing, a changed, added or reordered option re-runs
the steps that read the conf. A stamp of the previous stamp.sh (the conf by its raw bytes) is
accepted while the conf is unchanged, and rewritten. The independent answer is the log the steps
append to (which commands ran)."""

import hashlib

from stamp_helpers import PRELUDE, make_checkout, run_recipe

RECIPE = PRELUDE + r"""
train() { cat "$2" > model.txt; echo train >> ran.txt; }
other() { echo other >> ran.txt; }
step exp/.stamp "$KALDILITE_REPO/conf/nnet2.conf" --out model.txt -- train --config "$KALDILITE_REPO/conf/nnet2.conf"
step exp/.stamp_other "$KALDILITE_REPO/conf/mfcc.conf" -- other
"""

CONF = "# the DNN\n--num-epochs=4\n--minibatch-size=128  # 256 was no cheaper\n"


def setup(tmp_path):
    checkout = make_checkout(tmp_path / "repo", {"nnet2.conf": CONF, "mfcc.conf": "--num-ceps=13\n"})
    work = tmp_path / "work"
    work.mkdir()
    return checkout, work


def run(checkout, work):
    return run_recipe(RECIPE, work, checkout)[0]


def test_comment_and_blank_edits_re_run_nothing_option_edits_re_run_the_reader(tmp_path):
    checkout, work = setup(tmp_path)
    conf = checkout / "conf" / "nnet2.conf"
    assert run(checkout, work) == ["train", "other"]
    assert run(checkout, work) == []
    conf.write_text("# the DNN: 4 epochs (8 overfit)\n\n  --num-epochs=4   \n# minibatch\n"
                    "--minibatch-size=128\r\n#--minibatch-size=256\n")
    assert run(checkout, work) == []
    for changed in ("--num-epochs=5\n--minibatch-size=128\n",  # a value
                    "--num-epochs=5\n--minibatch-size=128\n--seed=1 # new\n",  # an added option
                    "--minibatch-size=128\n--seed=1\n--num-epochs=5\n"):  # reordered: the last of a name wins
        conf.write_text(changed)
        assert run(checkout, work) == ["train"]


def _raw_sum(path):
    """What the previous stamp.sh recorded for any non-scp file: sha1 of `sha1sum < FILE`'s line."""
    inner = hashlib.sha1(path.read_bytes()).hexdigest() + "  -\n"
    return hashlib.sha1(inner.encode()).hexdigest()


def _option_sum(path):
    lines = [raw.split("#", 1)[0].strip() for raw in path.read_text().split("\n")]
    inner = hashlib.sha1("".join(line + "\n" for line in lines if line).encode()).hexdigest() + "  -\n"
    return hashlib.sha1(("conf-options\n" + inner).encode()).hexdigest()


def test_a_stamp_of_the_raw_conf_is_accepted_while_the_conf_is_unchanged(tmp_path):
    checkout, work = setup(tmp_path)
    conf = checkout / "conf" / "nnet2.conf"
    assert run(checkout, work) == ["train", "other"]
    stamp = work / "exp" / ".stamp"
    new_form = stamp.read_text()
    assert f"@repo@/conf/nnet2.conf {_option_sum(conf)}\n" in new_form  # the option lines, by hand
    stamp.write_text(new_form.replace(_option_sum(conf), _raw_sum(conf)))  # as the previous stamp.sh wrote it
    assert run(checkout, work) == []
    assert stamp.read_text() == new_form  # rewritten in the new form
    stamp.write_text(new_form.replace(_option_sum(conf), _raw_sum(conf)))
    conf.write_text(CONF + "# a comment the raw stamp did not see\n")
    assert run(checkout, work) == ["train"]  # once: the raw stamp cannot tell a comment from an option
    conf.write_text(CONF + "# another comment\n")
    assert run(checkout, work) == []


def test_a_stale_step_hashes_its_inputs_no_more_than_a_first_run(tmp_path, monkeypatch):
    """The previous-form fallbacks of a stale stamp hash again only its conf inputs: the other inputs
    (data dirs, feature archives: the costly ones) are read once, as on a first run. sha1sum is
    counted through a wrapper first on PATH; the first run (no stamp, so no fallback) is the answer."""
    import shutil
    import stat

    checkout, work = setup(tmp_path)
    data = work / "data"
    data.mkdir()
    for name in ("text", "utt2spk", "wav.scp"):
        (data / name).write_text(f"{name} 1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sha1sum").write_text(f'#!/bin/sh\necho x >> "{tmp_path}/calls"\nexec {shutil.which("sha1sum")} "$@"\n')
    (bin_dir / "sha1sum").chmod(stat.S_IRWXU)
    recipe = PRELUDE + r"""
train() { echo train >> ran.txt; date +%s%N > model.txt; }
export PATH="$BIN:$PATH"
: > "$CALLS"
step exp/.stamp data "$KALDILITE_REPO/conf/nnet2.conf" --out model.txt -- train
"""
    monkeypatch.setenv("BIN", str(bin_dir))
    monkeypatch.setenv("CALLS", str(tmp_path / "calls"))

    def calls():
        return len((tmp_path / "calls").read_text().split())

    assert run_recipe(recipe, work, checkout)[0] == ["train"]
    first = calls()
    assert first > 0
    (data / "text").write_text("text 2\n")  # a real change: the stamp is stale
    assert run_recipe(recipe, work, checkout)[0] == ["train"]
    conf_rehash = 4  # the conf by options and by raw bytes, each an inner and an outer sha1sum
    assert calls() == first + conf_rehash
