"""recipes/commands/run.sh gives decode-commands its online-CMVN carry options (--online-cmvn-order-seed,
--online-cmvn-silence-weight) explicitly, from its knobs online_cmvn_order_seed and online_cmvn_silence_weight,
on every decode through online CMVN (the DNN trained on it: dev, and the held-out commands carried through
dev's decode; stage 10's <model>_online_cmvn row of a DNN trained on offline CMVN), so that recipes/utils/stamp.sh,
which records each step's command line, re-runs exactly those decodes when a knob changes: a work dir then never
keeps decodes made under another carry protocol.

run.sh's stages 9 and 10 run here for real (bash, stamp.sh, its own functions) in a stand-in checkout whose
`kaldilite` is a stub that logs each command line it is given (run-many's one by one) and writes the
files the next commands read. The independent answer is that log: which decodes ran, with which options.
The same harness checks stage 10's offline tri3b+nnet2 row (which system is primary, its features, what re-runs).
"""

import os
import shutil
import stat
import subprocess

from stamp_helpers import REPO

STUB = r"""#!/usr/bin/env bash
# a stand-in kaldilite: logs each command line; writes what run.sh reads back
set -euo pipefail
one() {
  echo "$*" >> "$KL_LOG"
  local last=${!#}
  case "$1" in
    data) [ "$2" != subset ] || { mkdir -p "$last"; cp "${@: -2:1}"/* "$last"/; } ;;  # the whole source dir
    decode-commands) mkdir -p "$last"; echo "$*" > "$last/measures.jsonl"; echo "0 cpu seconds 0 audio seconds 0" > "$last/rtf"
      # as decode-commands records the carry of a decode through online CMVN that carried by itself
      if [[ " $* " == *" --online-cmvn-silence-weight "* && " $* " != *" --online-cmvn-history "* ]]; then
        local w="$* "; w=${w#* --online-cmvn-silence-weight }; echo "--online-cmvn-silence-weight=${w%% *}" > "$last/cmvn_carry.conf"
      fi ;;
    calibrate-rejection) mkdir -p "$last"; echo '{"threshold": 0}' > "$last/rejection.json" ;;  # the same rule always
  esac
}
if [ "$1" = run-many ]; then
  shift
  status=/dev/null
  while [ $# -gt 1 ]; do case "$1" in --status) status=$2; shift 2 ;; *) shift 2 ;; esac; done
  n=0
  : > "$status"
  while read -r line; do
    [ -n "$line" ] || continue
    n=$((n + 1))
    eval "one $line"
    echo "$n 0" >> "$status"
  done < "$1"
else
  one "$@"
fi
"""


def make_checkout(root):
    """A stand-in repository: run.sh, recipes/utils, the recipe's confs, lang/en; a stub kaldilite on PATH."""
    (root / "kaldilite").mkdir(parents=True)
    (root / "kaldilite" / "__init__.py").write_text('__version__ = "9.9"\n')
    shutil.copytree(REPO / "recipes" / "utils", root / "recipes" / "utils")
    (root / "recipes" / "commands").mkdir()
    shutil.copy(REPO / "recipes" / "commands" / "run.sh", root / "recipes" / "commands" / "run.sh")
    (root / "recipes" / "commands" / "conf").symlink_to(REPO / "recipes" / "commands" / "conf")
    (root / "lang").mkdir()
    (root / "lang" / "en").symlink_to(REPO / "lang" / "en")
    (root / "bin").mkdir()
    (root / "bin" / "kaldilite").write_text(STUB)
    (root / "bin" / "kaldilite").chmod(stat.S_IRWXU)
    return root


def make_work_dir(work):
    """A work dir as stages 0-8 leave it, as far as stages 9-10 read it: dev, and the DNN beside tri3b's graphs."""
    dev = work / "data" / "dev"
    dev.mkdir(parents=True)
    utts = {"s1-yes-0": "yes", "s1-no-0": "no", "s2-yes-0": "yes"}
    (dev / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in utts))
    (dev / "text").write_text("".join(f"{u} {w}\n" for u, w in utts.items()))
    (dev / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in utts))
    (dev / "spk2utt").write_text("s1 s1-no-0 s1-yes-0\ns2 s2-yes-0\n")
    for name in ("train", "train_aug"):  # (stage 10's RESULTS header counts their utterances)
        (work / "data" / name).mkdir()
        (work / "data" / name / "text").write_text("s3-yes-0 yes\n")
    (work / "exp" / "nnet2").mkdir(parents=True)
    (work / "exp" / "nnet2" / "final.mdl").write_text("a DNN\n")
    (work / "exp" / "tri3b" / "graph_commands_norej").mkdir(parents=True)
    (work / "exp" / "tri3b" / "graph_commands_norej" / "HCLG.fst").write_text("a graph\n")


def run_stages(root, work, *options, verb="decode-commands", stop_stage=10):
    """run.sh --stage 9 --stop-stage 10 (`stop_stage`) with OPTIONS (the decodes, then calibration and the online-CMVN
    row; 11: the bundle): the
    `verb` lines the stub got (a name or a tuple of names; a decode's measures.jsonl holds its command line, so a changed decode changes
    what the steps after it read)."""
    log = root / "kaldilite.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", KL_LOG=str(log),
               KALDILITE_DATA=str(root / "no_data"))
    env.pop("KALDILITE_FORCE", None)
    out = subprocess.run(["bash", str(root / "recipes" / "commands" / "run.sh"), "--stage", "9", "--stop-stage", str(stop_stage),
                          "--dir", str(work), "--oov-synth-voices", "0", *options],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = log.read_text().splitlines() if log.exists() else []
    verbs = (verb,) if isinstance(verb, str) else verb
    return [line for line in lines if line.split(" ", 1)[0] in verbs]


CARRY_OPTIONS = ("--online-cmvn-order-seed", "--online-cmvn-silence-weight")


def test_the_carry_options_are_decode_commands_own():
    """The stub takes any option: what run.sh gives must be decode-commands' real option names."""
    import click

    from kaldilite.cli import cli

    decode_commands = cli.get_command(click.Context(cli), "decode-commands")
    assert set(CARRY_OPTIONS) <= {name for param in decode_commands.params for name in param.opts}


def carry(line):
    """The (order seed, silence weight) a decode-commands line gives, None for an option it lacks."""
    words = line.split()

    def value(option):
        return words[words.index(option) + 1] if option in words else None
    return tuple(value(option) for option in CARRY_OPTIONS)


def by_decode_dir(lines):
    """{decode dir (the line's last word, relative to the work dir): its carry}; each dir decoded once."""
    carries = {line.split()[-1]: carry(line) for line in lines}
    assert len(carries) == len(lines), lines
    return carries


def heldout_parts(system):
    commands = [c.strip() for c in (REPO / "lang" / "en" / "commands.txt").read_text().splitlines() if c.strip()]
    return [f"exp/{system}/decode_heldout_commands/parts/{c}" for c in ("yes", "no") if c in commands]


def test_the_carry_knobs_reach_every_online_cmvn_decode_and_re_run_exactly_those(tmp_path):
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    all_decodes = sorted(["exp/nnet2/decode_dev", "exp/nnet2/decode_dev_norej", *heldout_parts("nnet2")])

    first = by_decode_dir(run_stages(root, work))
    assert sorted(first) == all_decodes  # (no online-CMVN row: the DNN's own rows are online)
    assert set(first.values()) == {("0", "0")}  # the knobs' defaults, on every line

    assert run_stages(root, work) == []  # nothing changed: every decode up to date

    reordered = by_decode_dir(run_stages(root, work, "--online-cmvn-order-seed", "3"))
    assert sorted(reordered) == all_decodes and set(reordered.values()) == {("3", "0")}

    every_frame = by_decode_dir(run_stages(root, work, "--online-cmvn-order-seed", "3",
                                           "--online-cmvn-silence-weight", "1"))
    assert sorted(every_frame) == all_decodes and set(every_frame.values()) == {("3", "1")}


def test_the_bundle_is_exported_again_when_the_carry_its_rule_was_calibrated_with_changes(tmp_path):
    """Stage 11's export-model reads the carry of its rule's decode dir (exp/nnet2/decode_dev/cmvn_carry.conf) into
    the bundle's conf/online.conf: a changed online_cmvn_silence_weight re-exports the bundle even when the
    recalibrated rejection.json comes out byte-identical (the stub's always does)."""
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)

    def exports(*options):
        lines = run_stages(root, work, *options, verb="export-model", stop_stage=11)
        assert all(line.split()[-4:] == ["exp/nnet2/graph_commands/rejection.json", "exp/nnet2",
                                         "exp/nnet2/graph_commands", "exp/nnet2_online"] for line in lines), lines
        return len(lines)

    assert exports() == 1
    assert (work / "exp/nnet2/decode_dev/cmvn_carry.conf").read_text() == "--online-cmvn-silence-weight=0\n"
    assert exports() == 0  # nothing changed
    assert exports("--online-cmvn-silence-weight", "1") == 1
    assert (work / "exp/nnet2/decode_dev/cmvn_carry.conf").read_text() == "--online-cmvn-silence-weight=1\n"


def test_a_model_not_trained_on_online_cmvn_gets_the_options_only_in_its_online_cmvn_row(tmp_path):
    """A DNN trained on offline CMVN: its own decodes neither get the options nor re-run when a knob changes; stage
    10's <model>_online_cmvn row (dev and the held-out commands through online CMVN) gets them, and re-runs."""
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    row = sorted(["exp/nnet2_online_cmvn/decode_dev", *heldout_parts("nnet2_online_cmvn")])

    first = by_decode_dir(run_stages(root, work, "--nnet-online-cmvn", "false"))
    assert {d: c for d, c in first.items() if d.startswith("exp/nnet2/")} and \
        {c for d, c in first.items() if d.startswith("exp/nnet2/")} == {(None, None)}
    assert sorted(d for d in first if d.startswith("exp/nnet2_online_cmvn/")) == row
    assert {first[d] for d in row} == {("0", "0")}

    reordered = by_decode_dir(run_stages(root, work, "--nnet-online-cmvn", "false", "--online-cmvn-order-seed", "3"))
    assert sorted(reordered) == row and set(reordered.values()) == {("3", "0")}



def test_the_fused_row_is_nnet2_first_and_re_runs_on_its_features_and_on_tri3b_decodes(tmp_path):
    """Stage 10's offline tri3b+nnet2 row: fuse-command-scores with nnet2 primary (its command) and tri3b second,
    then calibrate-rejection over fusion_features on the fused dir. A changed fusion_features re-calibrates that row
    alone (the fusion and every other calibration up to date); a changed tri3b decode re-fuses."""
    from kaldilite.score.commands import FUSION_FEATURES

    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    for name in ("final.mdl", "final.alimdl", "final.mat"):
        (work / "exp" / "tri3b" / name).write_text("a SAT GMM\n")

    def run(*options):
        """(the fuse-command-scores lines, {system: the --features of its calibrate-rejection line})."""
        lines = run_stages(root, work, *options, verb=("fuse-command-scores", "calibrate-rejection"))
        calibrations = {line.split()[-1].split("/")[1]: line.split("--features ")[1].split()[0]
                        for line in lines if line.startswith("calibrate-rejection ")}
        fusions = [line for line in lines if line.startswith("fuse-command-scores ")]
        assert len(calibrations) + len(fusions) == len(lines), lines
        return fusions, calibrations

    default = ",".join(FUSION_FEATURES)  # run.sh's fusion_features is the bench's fused rule (rejection_slice.py)
    assert run() == (["fuse-command-scores exp/nnet2 exp/tri3b exp/tri3b+nnet2"],
                     {"tri3b": "llr_total,gop_mean", "nnet2": "llr_total,gop_mean", "tri3b+nnet2": default})
    assert run() == ([], {})  # nothing changed
    assert run("--fusion-features", "llr_total,second_llr_total") == ([], {"tri3b+nnet2": "llr_total,second_llr_total"})
    # tri3b's decodes change (decode-commands --fmllr-hypothesis, SAT models' only): the fusion again, nnet2's rule kept
    fusions, calibrations = run("--fusion-features", "llr_total,second_llr_total", "--sat-fmllr-hypothesis", "garbage")
    assert fusions == ["fuse-command-scores exp/nnet2 exp/tri3b exp/tri3b+nnet2"] and "nnet2" not in calibrations
