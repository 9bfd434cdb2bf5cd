"""Rejection study on held-out TRAINING speakers under the in-domain protocol (issue 7).

The commands recipe ships the llr_total threshold calibrated for 5% false accepts on the
in-domain unknown words of unseen speakers: dev's fillers + noise + the held-out commands (each
dev command decoded with a grammar of the other nine commands + fillers + garbage). Tuning any
knob on dev itself would tune on the reported speakers, so this study repeats the protocol on a
slice of training speakers that the models did not see:

  SLICE_DIR/data/slice (and data/hires_slice for a hires DNN): the slice (commands, fillers, noise);
  SLICE_DIR/data/lang_test, the decoding lang; SLICE_DIR/exp/<gmm>, SLICE_DIR/exp/<dnn>: models
  trained on the other training speakers (the DNN on the GMM's tree: it decodes the GMM's graphs).

For each garbage phone bonus b (make-grammar --garbage-phone-bonus, with run.sh's --edge-noise-prob
p, and --garbage-excludes-commands / --garbage-phone-lm if given) and acoustic scale a it builds the
commands grammar, the ten leave-one-command-out grammars and the GMM's graphs, then decodes with both
models, all with --phone-scores, into OUT/exp/<model>/<grammar_tag>_a<a>/ (gb<b>[_en<p>][_xc][_lm<m>]_a<a>;
an exp dir as the recipe lays it out, the slice in dev's place):
decode_dev, the slice (--exact-llr); decode_dev_norej, the slice with the commands-only grammar (the
forced choice); decode_heldout_commands, its held-out commands (--lattice-llr, as run.sh;
OUT/data/heldout_commands as run.sh makes it; a DNN trained on online CMVN carries its stats through
each speaker's clips of the whole slice, as run.sh's --online-cmvn-history, by --online-cmvn-protocol:
live, in a seeded random order with the silence frames of each clip's best path weighted 0, as
decode-online carries them; old, spk2utt order, every frame). Before any decoding,
each model is checked against the GMM's graph (`check_graph_for_model`: a DNN of another tree is
refused). Then, per setting, the recipe's own scoring (`commands_results_rows`, the first threshold
row of recipes/commands/RESULTS): command accuracy on the slice's commands with the threshold 2-fold
cross-calibrated by speaker for FA <= 5% on the slice's fillers + noise + held-out commands, for the
scores llr_total, confidence, logistic, logistic(llr_total,gop_mean) (the recipe's), gop_mean, and
the fusion of the two models (fuse-command-scores: the DNN's command, accepted by the logistic rule over
the DNN's llr_total and gop_mean and the GMM's llr_total, score.commands.FUSION_FEATURES; run.sh's
tri3b+nnet2 row, there with tri3b's own bonus-1 decode).
Writes OUT/results.md and (unless --no-report) the `commands-rejection-slice` section of BENCHMARKS.md.
With --splits N, each row also gets the mean command accuracy and pooled FA over N random halvings of
the slice's speakers (each half decided by the rule calibrated on the other): the protocol's one fixed
split moves a score's figure by 1-3 points, and whether calibration keeps its FA target is a mean over
splits (`random_halves`).

SLICE_DIR is built by bench/make_slice.py (run.sh's stages 0-8 without the slice, every 7th training speaker:
exp/tri3b, exp/nnet2 the shipped DNN pair), e.g.

  OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/make_slice.py --slice-dir /tmp/v1/slc
  .venv/bin/python bench/rejection_slice.py --slice-dir /tmp/v1/slc --gmm tri3b --dnn nnet2 \\
      --out /tmp/v1/rs --bonuses "2 1 0 -1" --acwts 0.1

A DNN trained with online i-vectors decodes with --dnn-ivector-dir DIR (extract-ivectors-online of
SLICE_DIR/data/hires_slice with its extractor, per real speaker).
"""

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import (heldout_commands_dir, in_domain_figures, machine_line, merge_measures,  # noqa: E402
                     update_section, write_data_subset, write_if_changed)

REPO = Path(__file__).resolve().parents[1]
KALDILITE = str(Path(sys.executable).parent / "kaldilite")
COMMANDS_TXT = REPO / "lang/en/commands.txt"
FILLERS = REPO / "lang/en/fillers.txt"


def run(*args, log=None):
    with open(log, "a") if log else open(os.devnull, "w") as out:
        subprocess.run([KALDILITE, *map(str, args)], check=True, stdout=out, stderr=out)


def commands():
    return [line.strip() for line in COMMANDS_TXT.read_text().splitlines() if line.strip()]


def prepare(out, slice_dir):
    """OUT/data: the fillers + silence list, per-command lists, the held-out subsets of the slice and
    OUT/data/heldout_commands (all of them, text heldout_<command>: the scoring's data dir)."""
    # Runs sharing OUT (several settings at once) all call this: every file and data dir here is written
    # atomically and only when its content would change, never under another run's decode that reads it.
    local = out / "data/local/heldout"
    words = [w for w in FILLERS.read_text().split() if not w.startswith("#")]
    write_if_changed(out / "data/local/fillers_and_silence.txt", "\n".join(words + ["!SIL"]) + "\n")
    text = dict(line.split(" ", 1) for line in (slice_dir / "data/slice/text").read_text().splitlines())
    cmds = commands()
    for c in cmds:
        write_if_changed(local / f"minus_{c}.txt", "".join(f"{o}\n" for o in cmds if o != c))
        utts = [u for u, t in sorted(text.items()) if t.strip() == c]
        write_if_changed(local / f"{c}.utts", "".join(f"{u}\n" for u in utts))
        for prefix in ("", "hires_"):
            src = slice_dir / f"data/{prefix}slice"
            if src.is_dir():
                write_data_subset(src, out / f"data/{prefix}heldout_{c}", utts)
    heldout_commands_dir(slice_dir / "data/slice", cmds, out / "data/heldout_commands")


def grammar_tag(bonus, edge_noise, excludes_commands=False, phone_lm=None):
    """The grammar part of a setting's name: gb<bonus>, plus _en<p> with make-grammar --edge-noise-prob p
    (decodes made before that option, with none, keep their names), plus _xc with
    --garbage-excludes-commands true, plus _lm<name> with --garbage-phone-lm <name>.arpa."""
    return (f"gb{bonus}" + (f"_en{edge_noise:g}" if edge_noise else "") + ("_xc" if excludes_commands else "")
            + (f"_lm{Path(phone_lm).stem}" if phone_lm else ""))


def online_cmvn_model(model_path):
    """True for a DNN trained on online CMVN (train-nnet2 --online-cmvn): it decodes with it unasked."""
    from kaldilite.online.bundle import load_scoring_model
    from kaldilite.train.decode_commands import decoding_kind

    if decoding_kind(model_path) != "single":  # SAT, or a DNN on fMLLR input: speaker-adapted, never online
        return False
    pipeline = load_scoring_model(model_path).pipeline
    return pipeline is not None and pipeline.cmvn == "online"


# decode-commands options of each online-CMVN protocol (a DNN trained on online CMVN): "live", decode-commands'
# defaults, as decode-online carries the stats (each speaker's clips in a seeded random order, the frames each
# clip's best path puts on silence weighted 0); "old", the protocol before 2026-11-26 (spk2utt order, which
# sorts a speaker's clips by word, every frame at weight 1)
ONLINE_CMVN_PROTOCOLS = {"live": [], "old": ["--online-cmvn-order-seed", "-1", "--online-cmvn-silence-weight", "1"]}


def build_and_decode(out, slice_dir, gmm, dnn, bonus, edge_noise, acwt, beam, lattice_beam, excludes_commands=False,
                     phone_lm=None, dnn_ivector_dir=None, online_cmvn_protocol="live"):
    tag = grammar_tag(bonus, edge_noise, excludes_commands, phone_lm)

    def grammar_graph(name, items):
        lang = out / f"data/{name}_{tag}"
        if not (lang / "G.fst").is_file():
            run("make-grammar", "--fillers", out / "data/local/fillers_and_silence.txt", "--garbage", "true",
                "--garbage-cost", "0.0", "--garbage-phone-bonus", bonus, "--edge-noise-prob", edge_noise,
                *(["--garbage-excludes-commands", "true"] if excludes_commands else []),
                *(["--garbage-phone-lm", phone_lm] if phone_lm else []), items,
                slice_dir / "data/lang_test", lang)
        graph = out / f"exp/{gmm}/graph_{name}_{tag}"
        if not (graph / "HCLG.fst").is_file():
            run("mkgraph", lang, slice_dir / f"exp/{gmm}", graph)
        return graph

    from kaldilite.graph.provenance import check_graph_for_model

    graph = grammar_graph("lang_commands", COMMANDS_TXT)
    for model in (gmm, dnn):  # a DNN on another tree than the GMM's decodes its graphs into garbage
        check_graph_for_model(graph, slice_dir / f"exp/{model}/final.mdl")
    minus = {c: grammar_graph(f"lang_minus_{c}", out / f"data/local/heldout/minus_{c}.txt") for c in commands()}
    # the forced choice (run.sh's graph_commands_norej): the commands alone, make-grammar's defaults
    norej = out / f"exp/{gmm}/graph_lang_commands_norej"
    if not (norej / "HCLG.fst").is_file():
        if not (out / "data/lang_commands_norej/G.fst").is_file():
            run("make-grammar", COMMANDS_TXT, slice_dir / "data/lang_test", out / "data/lang_commands_norej")
        run("mkgraph", out / "data/lang_commands_norej", slice_dir / f"exp/{gmm}", norej)
    for model in (gmm, dnn):
        hires = "hires_" if model == dnn and (slice_dir / "data/hires_slice").is_dir() else ""
        sat = ["--fmllr-hypothesis", "best"] if (slice_dir / f"exp/{model}/final.alimdl").is_file() else []
        # a DNN trained with online i-vectors: the slice's, extracted per speaker through its clips (the held-out
        # parts are subsets of the slice: their rows are those of the whole slice, as --online-cmvn-history)
        ivectors = ["--online-ivector-dir", dnn_ivector_dir] if model == dnn and dnn_ivector_dir else []
        common = ["--phone-scores", "--beam", beam, "--lattice-beam", lattice_beam, "--acwt", acwt, *sat, *ivectors,
                  "--model", slice_dir / f"exp/{model}/final.mdl"]
        dest = out / f"exp/{model}/{tag}_a{acwt}"
        adopt_old_layout(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)  # (the DNN has no graphs of its own there)
        log = f"{dest}.log"
        # a DNN trained on online CMVN carries its stats through each speaker's clips of the whole slice, as
        # run.sh decodes dev's held-out parts (--online-cmvn-history): not through the part's clips alone
        history = []
        if online_cmvn_model(slice_dir / f"exp/{model}/final.mdl"):
            common += ONLINE_CMVN_PROTOCOLS[online_cmvn_protocol]
            history = ["--online-cmvn-history", slice_dir / f"data/{hires}slice"]
            if online_cmvn_protocol == "live":  # the slice decode's best paths decided what its clips carried
                history += ["--online-cmvn-history-weights", dest / "decode_dev"]
        if not (dest / "decode_dev/measures.jsonl").is_file():
            print(f"{model} {tag} a{acwt}: slice", file=sys.stderr, flush=True)
            run("decode-commands", "--exact-llr", "--nj", 1, *common, graph, slice_dir / f"data/{hires}slice",
                dest / "decode_dev", log=log)
        if not (dest / "decode_dev_norej/measures.jsonl").is_file():
            print(f"{model} {tag} a{acwt}: slice, commands-only grammar", file=sys.stderr, flush=True)
            run("decode-commands", "--nj", 1, *common, norej, slice_dir / f"data/{hires}slice",
                dest / "decode_dev_norej", log=log)
        if not (dest / "decode_heldout_commands/measures.jsonl").is_file():
            print(f"{model} {tag} a{acwt}: held-out commands", file=sys.stderr, flush=True)
            parts = [dest / f"heldout_parts/{c}" for c in commands()]
            for c, part in zip(commands(), parts):
                run("decode-commands", "--lattice-llr", "--nj", 1, *common, *history, minus[c],
                    out / f"data/{hires}heldout_{c}", part, log=log)
            merge_measures(parts, dest / "decode_heldout_commands/measures.jsonl")


def adopt_old_layout(dest):
    """Decodes made by this script before 2026-11-25 (DEST/slice, DEST/heldout) renamed to the
    recipe's layout, so that they are scored instead of decoded again."""
    for old, new in (("slice", "decode_dev"), ("heldout", "decode_heldout_commands")):
        if (dest / old / "measures.jsonl").is_file() and not (dest / new).exists():
            (dest / old).rename(dest / new)


@functools.lru_cache(maxsize=None)
def _pooled_slice(slice_data, exp, heldout):
    """(references, measures, utt2spk, keys of the slice's utterances) of SLICE_DATA + HELDOUT decoded in
    EXP/decode_dev, EXP/decode_heldout_commands, pooled (`_pooled_sets`): read once per exp dir, not
    once per score."""
    from kaldilite.cli.commands import _pooled_sets

    keys = []  # per set: {utterance id: its key in the pool} (the held-out commands' ids get a prefix)
    refs, measures, utt2spk = _pooled_sets([(slice_data, exp / "decode_dev"),
                                            (heldout, exp / "decode_heldout_commands")], COMMANDS_TXT, keys)
    return refs, measures, utt2spk, keys[0].values()


def random_halves(slice_data, exp, heldout, rule, splits, target_fa=0.05, seed=0):
    """(mean command accuracy, mean pooled FA) of `rule` over `splits` random halvings of the speakers of
    SLICE_DATA + HELDOUT (decoded in EXP/decode_dev, EXP/decode_heldout_commands), each half decided by
    the rule calibrated (`calibrate_threshold`, by speaker) on the other half, as the protocol's 2 folds
    (`cross_calibrated_decisions` with the random halves as its speaker folds)."""
    import random

    from kaldilite.score.commands import (SILENCE_CLASS, UNKNOWN_CLASS, cross_calibrated_decisions,
                                          reference_class, score_decisions)

    cmds = commands()
    refs, measures, utt2spk, slice_keys = _pooled_slice(slice_data, exp, heldout)
    speakers = sorted(set(utt2spk.values()))
    # accuracy on the slice's commands; the held-out commands (decoded without their word) are negatives only
    slice_refs = {key: refs[key] for key in slice_keys}
    # the held-out commands' references are heldout_<command>: unknown words, like the fillers
    negative = [u for u in refs if reference_class(refs[u], cmds) in (UNKNOWN_CLASS, SILENCE_CLASS)]
    rng = random.Random(seed)
    accuracy, fa = [], []
    for _ in range(splits):
        order = speakers[:]
        rng.shuffle(order)
        group = {spk: int(k >= len(order) // 2) for k, spk in enumerate(order)}
        decisions, _ = cross_calibrated_decisions(refs, measures, rule, cmds, utt2spk, target_fa, group=group)
        accuracy.append(score_decisions(slice_refs, decisions, cmds).accuracy)
        fa.append(sum(decisions[u].accepted for u in negative) / len(negative))
    return sum(accuracy) / splits, sum(fa) / splits


def evaluate(out, slice_dir, model_dirs, target_fa=0.05, splits=0):
    """Rows (score name, command acc, pooled FA, counts) for one setting's decodes of each model, by
    the recipe's scoring (`commands_results_rows`): the slice in dev's place, the held-out commands
    as the one calibration set."""
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.errors import InputError
    from kaldilite.score.commands import DEFAULT_LOGISTIC_FEATURES, FUSION_FEATURES

    rules = {"llr_total": RejectionRule(score="llr_total"), "confidence": RejectionRule(score="confidence"),
             "logistic": RejectionRule(score="logistic", logistic={"features": list(DEFAULT_LOGISTIC_FEATURES)}),
             # the recipe's score (run.sh rejection_features): llr_total + the command's mean GOP
             "logistic(llr_total,gop_mean)": RejectionRule(score="logistic",
                                                           logistic={"features": ["llr_total", "gop_mean"]}),
             "gop_mean": RejectionRule(score="gop_mean")}

    exps = dict(model_dirs)
    if len(exps) == 2:  # the fusion, an exp dir of its own (fuse-command-scores: the GMM's floor from the slice)
        (gmm, a), (dnn, b) = exps.items()
        fused = out / f"exp/{gmm}+{dnn}" / a.name
        record = fused / "fusion.json"  # (an exp dir of the earlier summed-llr fusion has none)
        if not record.is_file() or any(p.stat().st_mtime > record.stat().st_mtime
                                       for e in (a, b) for p in e.glob("decode_*/measures.jsonl")):
            run("fuse-command-scores", b, a, fused)  # (again after a re-decode of either model)
        exps[f"{gmm}+{dnn}"] = fused
    fusion = RejectionRule(score="logistic", logistic={"features": list(FUSION_FEATURES)})
    heldout = out / "data/heldout_commands"
    rows = []
    for model, exp in exps.items():
        for score in ("fusion",) if "+" in model else rules:
            rule = fusion if score == "fusion" else rules[score]
            try:
                figures = in_domain_figures(slice_dir / "data/slice", exp, heldout, COMMANDS_TXT, rule, target_fa)
            except InputError as exc:  # decodes made before --phone-scores: no phone-level rows
                print(f"{model} {score}: skipped ({exc})", file=sys.stderr)
                continue
            rows.append(dict(model=model, score=score, **{k: figures[k] for k in
                                                          ("acc", "fa", "no_threshold", "forced", "oracle", "oracle_fa",
                                                           "eer", "counts", "thresholds")}))
            if splits:
                rows[-1]["halves"] = random_halves(slice_dir / "data/slice", exp, heldout, rule, splits, target_fa)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice-dir", required=True, type=Path)
    parser.add_argument("--gmm", default="tri3b", help="GMM system in SLICE_DIR/exp (its graphs are built).")
    parser.add_argument("--dnn", default="nnet2", help="DNN in SLICE_DIR/exp on the GMM's tree.")
    parser.add_argument("--out", required=True, type=Path, help="Where grammars, graphs and decodes go.")
    parser.add_argument("--bonuses", default="2 1 0 -1")
    parser.add_argument("--acwts", default="0.1")
    parser.add_argument("--edge-noise-prob", type=float, default=0.1,
                        help="make-grammar --edge-noise-prob of every grammar (run.sh's default; 0: none).")
    parser.add_argument("--garbage-excludes-commands", action="store_true",
                        help="make-grammar --garbage-excludes-commands true for the grammars with garbage (settings "
                             "tagged _xc).")
    parser.add_argument("--garbage-phone-lm", type=Path,
                        help="make-grammar --garbage-phone-lm FILE (an ARPA phone n-gram, make-phone-lm) for the "
                             "grammars with garbage (settings tagged _lm<FILE's stem>).")
    parser.add_argument("--dnn-ivector-dir", type=Path,
                        help="For a DNN trained with online i-vectors (train-nnet2 --online-ivector-dir): "
                             "extract-ivectors-online's output for the DNN's slice data dir (data/hires_slice), per "
                             "real speaker, with the DNN's extractor.")
    parser.add_argument("--online-cmvn-protocol", choices=sorted(ONLINE_CMVN_PROTOCOLS), default="live",
                        help="A DNN trained on online CMVN: live (decode-commands' defaults, as decode-online carries "
                             "the stats: each speaker's clips in a seeded random order, silence frames of each clip's "
                             "best path weighted 0) or old (spk2utt order, every frame: the protocol before "
                             "2026-11-26). Give each its own --out.")
    parser.add_argument("--beam", default="13.0")
    parser.add_argument("--lattice-beam", default="10.0")
    parser.add_argument("--no-decode", action="store_true", help="Only tabulate the decodes that exist.")
    parser.add_argument("--splits", type=int, default=0,
                        help="Also the mean accuracy and FA over this many random halvings of the speakers.")
    parser.add_argument("--no-report", action="store_true",
                        help="Write the table to OUT/results.md only, not into BENCHMARKS.md (a private study).")
    args = parser.parse_args()
    slice_dir, out = args.slice_dir.resolve(), args.out.resolve()
    phone_lm = args.garbage_phone_lm.resolve() if args.garbage_phone_lm else None
    prepare(out, slice_dir)  # (cheap; also the scoring's data/heldout_commands)
    lines = ["| setting | model | score | command acc % | FA % (pool) | false accepts | oracle acc % @ FA % | EER % | "
             "no-threshold acc % | commands-only acc % | thresholds (fold 1, 2) |"
             + (f" acc % @ FA %, mean of {args.splits} random halvings |" if args.splits else ""),
             "|---" * (12 if args.splits else 11) + "|"]

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    for bonus in args.bonuses.split():
        for acwt in args.acwts.split():
            if not args.no_decode:
                build_and_decode(out, slice_dir, args.gmm, args.dnn, bonus, args.edge_noise_prob, acwt, args.beam,
                                 args.lattice_beam, args.garbage_excludes_commands, phone_lm,
                                 args.dnn_ivector_dir.resolve() if args.dnn_ivector_dir else None,
                                 args.online_cmvn_protocol)
            setting = f"{grammar_tag(bonus, args.edge_noise_prob, args.garbage_excludes_commands, phone_lm)}_a{acwt}"
            dirs = {m: out / f"exp/{m}/{setting}" for m in (args.gmm, args.dnn)}
            for d in dirs.values():
                adopt_old_layout(d)
            dirs = {m: d for m, d in dirs.items() if (d / "decode_heldout_commands/measures.jsonl").is_file()}
            for r in evaluate(out, slice_dir, dirs, splits=args.splits) if dirs else []:
                halves = (f" {pct(r['halves'][0])} @ {pct(r['halves'][1])} |" if "halves" in r else
                          " - |" if args.splits else "")
                lines.append(f"| {setting} | {r['model']} | {r['score']} | {pct(r['acc'])} | {pct(r['fa'])} | "
                             f"{r['counts']} | {pct(r['oracle'])} @ {pct(r['oracle_fa'])} | {pct(r['eer'])} | "
                             f"{pct(r['no_threshold'])} | {pct(r['forced'])} | {r['thresholds']} |{halves}")
                print(lines[-1], flush=True)
    header = (f"## Rejection on held-out training speakers, in-domain protocol (`bench/rejection_slice.py`)\n\n"
              f"{machine_line()}; slice `{slice_dir}/data/slice` (training speakers no model saw), GMM "
              f"`{args.gmm}`, DNN `{args.dnn}` (online-CMVN protocol: {args.online_cmvn_protocol}). "
              "Command acc on the slice's commands with the threshold 2-fold "
              "cross-calibrated by speaker for FA <= 5% on the slice's fillers + noise + held-out commands "
              "(each command decoded with a grammar of the other nine: the protocol of recipes/commands/RESULTS' "
              "first threshold row); oracle: one threshold calibrated on the whole pool; EER over the "
              "cross-calibrated scores; commands-only: the forced choice (grammar of the commands alone). Settings "
              "`gb<b>[_en<p>][_lm<m>]_a<a>`: make-grammar --garbage-phone-bonus b [--edge-noise-prob p] "
              "[--garbage-phone-lm m.arpa], decode-commands --acwt a. `A+B`: fuse-command-scores (B's command, the "
              "logistic rule over B's llr_total and gop_mean and A's llr_total). The held-out "
              "commands are decoded with the lattice llr, clipped at lattice beam / acwt (100 at acwt 0.1): a "
              "threshold at the clip (bonus -1, -2) is decided by the lattice beam, not a valid figure."
              + (f" Last column: the mean over {args.splits} random halvings of the slice's speakers, each half "
                 "decided by the rule calibrated on the other (the 2-fold protocol with other folds)." if args.splits
                 else "") + "\n")
    (out / "results.md").write_text(header + "\n" + "\n".join(lines) + "\n")
    if not args.no_report:
        update_section("commands-rejection-slice", header + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
