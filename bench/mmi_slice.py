"""Boosted MMI vs its ML start on held-out training speakers, in-domain rejection protocol (issue 7).

The GMM systems compared live in SLICE_DIR/exp (a copy of bench/rejection_slice.py's slice
layout: data/slice, data/lang_test, exp/<system> with final.mdl, final.alimdl, tree); the first
is the baseline. For each system this runs rejection_slice.py's protocol at one setting
(make-grammar --garbage-phone-bonus, --acwt): the slice decoded with the commands grammar
(--exact-llr) and each slice command with the grammar of the other nine (--lattice-llr), the
llr_total threshold 2-fold cross-calibrated by speaker for FA <= 5% on fillers + noise +
held-out commands; plus the commands-only grammar (forced choice) and the EER of llr_total over
the same negatives. Each row gives PAIRED counts against the baseline: slice commands it gets
right that the baseline did not (fixed) and the reverse (broken), for both figures.
Writes the `mmi-slice` section of BENCHMARKS.md.

  # train_s(+aug) = what t3_vf0 was trained on; t3_ali = align-fmllr of it with t3_vf0
  kaldilite make-denlats --nj 2 W/data/train_aug_s W/data/lang W/exp/t3_vf0/graph_commands W/exp/t3_ali DEN
  kaldilite train-mmi --nj 2 --boost 0.1 W/data/train_aug_s W/data/lang W/exp/t3_ali DEN SLICE/exp/t3_mmi_b0.1
  .venv/bin/python bench/mmi_slice.py --slice-dir SLICE --out OUT t3_vf0 t3_mmi_b0.1 [more systems]
"""

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rejection_slice as protocol  # noqa: E402
from _report import machine_line, merge_measures, update_section  # noqa: E402


def decode(out, slice_dir, system, bonus, acwt, beam="13.0", lattice_beam="10.0"):
    """The protocol's decodes of one system under OUT/SYSTEM (grammars and graphs as rejection_slice.py
    builds them); returns (rejection decode dir, forced-choice decode dir)."""
    work = out / system
    protocol.prepare(work, slice_dir)
    model_dir = slice_dir / f"exp/{system}"

    def graph_of(name, items, *grammar_options):
        lang = work / f"data/{name}"
        if not (lang / "G.fst").is_file():
            protocol.run("make-grammar", *grammar_options, items, slice_dir / "data/lang_test", lang)
        graph = work / f"exp/{system}/graph_{name}"
        if not (graph / "HCLG.fst").is_file():
            protocol.run("mkgraph", lang, model_dir, graph)
        return graph

    rejection = ["--fillers", work / "data/local/fillers_and_silence.txt", "--garbage", "true", "--garbage-cost", "0.0",
                 "--garbage-phone-bonus", bonus]
    common = ["--beam", beam, "--lattice-beam", lattice_beam, "--acwt", acwt, "--model", model_dir / "final.mdl"]
    if (model_dir / "final.alimdl").is_file():
        common += ["--fmllr-hypothesis", "garbage"]  # as the mmi-slice figures were made (run.sh now: best)
    dest = work / f"exp/{system}/gb{bonus}_a{acwt}"
    log = f"{dest}.log"
    if not (dest / "decode_dev/measures.jsonl").is_file():
        graph = graph_of(f"lang_commands_gb{bonus}", protocol.COMMANDS_TXT, *rejection)
        protocol.run("decode-commands", "--exact-llr", "--nj", 1, *common, graph, slice_dir / "data/slice",
                     dest / "decode_dev", log=log)
    if not (dest / "decode_heldout_commands/measures.jsonl").is_file():
        for c in protocol.commands():
            graph = graph_of(f"lang_minus_{c}_gb{bonus}", work / f"data/local/heldout/minus_{c}.txt", *rejection)
            protocol.run("decode-commands", "--lattice-llr", "--nj", 1, *common, graph, work / f"data/heldout_{c}",
                         dest / f"heldout_parts/{c}", log=log)
        merge_measures([dest / f"heldout_parts/{c}" for c in protocol.commands()],
                       dest / "decode_heldout_commands/measures.jsonl")
    forced = work / f"exp/{system}/norej_a{acwt}"
    if not (forced / "measures.jsonl").is_file():
        graph = graph_of("lang_norej", protocol.COMMANDS_TXT)
        protocol.run("decode-commands", "--exact-llr", "--nj", 1, *common, graph, slice_dir / "data/slice", forced,
                     log=f"{forced}.log")
    return dest, forced


def figures(slice_dir, rejection_dir, forced_dir, target_fa=0.05):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import (SILENCE_CLASS, UNKNOWN_CLASS, cross_calibrated_decisions, decide_all,
                                          det_curve, equal_error_rate, read_measures, reference_class,
                                          score_decisions)

    cmds = set(protocol.commands())
    text = {u: t.strip() for u, t in (line.split(" ", 1) for line in
                                      (slice_dir / "data/slice/text").read_text().splitlines())}
    utt2spk = dict(line.split() for line in (slice_dir / "data/slice/utt2spk").read_text().splitlines())
    refs = {**text, **{f"ho/{u}": f"heldout_{t}" for u, t in text.items() if t in cmds}}
    spk = {**utt2spk, **{f"ho/{u}": s for u, s in utt2spk.items()}}
    slice_refs = {u: t for u, t in refs.items() if not u.startswith("ho/")}
    negatives = [u for u in refs if reference_class(refs[u], cmds) in (UNKNOWN_CLASS, SILENCE_CLASS)]
    command_utts = [u for u, t in slice_refs.items() if t in cmds]
    measures = read_measures(rejection_dir / "decode_dev/measures.jsonl")
    heldout = read_measures(rejection_dir / "decode_heldout_commands/measures.jsonl")
    measures.update({f"ho/{u}": v for u, v in heldout.items()})
    rule = RejectionRule(score="llr_total", threshold=-math.inf)
    decided, thresholds = cross_calibrated_decisions(refs, measures, rule, cmds, spk, target_fa)
    scores = score_decisions(slice_refs, decided, cmds)
    eer = equal_error_rate(det_curve(refs, measures, rule, cmds, negatives=(UNKNOWN_CLASS, SILENCE_CLASS)))
    forced = decide_all(read_measures(forced_dir / "measures.jsonl"), rule)
    return {"acc": scores.accuracy, "fa": sum(decided[u].accepted for u in negatives) / len(negatives),
            "false_accepts": {u for u in negatives if decided[u].accepted}, "thresholds": thresholds,
            "right": {u for u in command_utts if decided[u].accepted and decided[u].label == text[u]},
            "forced_right": {u for u in command_utts if u in forced and forced[u].accepted
                             and forced[u].label == text[u]},
            "eer": eer, "num_commands": len(command_utts),
            "num_negatives": len(negatives)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="Where grammars, graphs and decodes go.")
    parser.add_argument("--bonus", default="2", help="make-grammar --garbage-phone-bonus (run.sh's default).")
    parser.add_argument("--acwt", default="0.1")
    parser.add_argument("--no-report", action="store_true", help="Print only; leave BENCHMARKS.md alone.")
    parser.add_argument("--note", default="", help="Text under the table (what the systems are, other checks).")
    parser.add_argument("systems", nargs="+", help="GMM systems in SLICE_DIR/exp; the first is the baseline.")
    args = parser.parse_args()
    slice_dir, out = args.slice_dir.resolve(), args.out.resolve()
    rows = {}
    for system in args.systems:
        rows[system] = figures(slice_dir, *decode(out, slice_dir, system, args.bonus, args.acwt))
    base = rows[args.systems[0]]
    lines = ["| system | command acc % @ FA % | fixed / broken | false accepts (new / gone) | EER % | "
             "forced-choice acc % | fixed / broken | thresholds |", "|---|---|---|---|---|---|---|---|"]
    for system, r in rows.items():
        def paired(key):
            return f"{len(r[key] - base[key])} / {len(base[key] - r[key])}"

        thresholds = ", ".join(f"{t:.3g}" for t in r["thresholds"])
        lines.append(f"| {system} | {100 * r['acc']:.1f} @ {100 * r['fa']:.1f} | {paired('right')} | "
                     f"{len(r['false_accepts'])} ({paired('false_accepts')}) | {100 * r['eer']:.1f} | "
                     f"{100 * len(r['forced_right']) / r['num_commands']:.1f} | {paired('forced_right')} | "
                     f"{thresholds} |")
        print(lines[-1], flush=True)
    if args.no_report:
        return
    header = (f"## Boosted MMI on held-out training speakers (`bench/mmi_slice.py`)\n\n{machine_line()}; slice "
              f"`{slice_dir}/data/slice` ({base['num_commands']} commands, {base['num_negatives']} negatives: "
              f"fillers + noise + held-out commands), setting gb{args.bonus}_a{args.acwt}, baseline "
              f"`{args.systems[0]}`. "
              "Command acc with the llr_total threshold 2-fold cross-calibrated by speaker for FA <= 5% (the "
              "protocol of bench/rejection_slice.py); forced choice = the commands-only grammar; fixed / broken = "
              "slice commands right here and wrong in the baseline, and the reverse (paired counts).\n")
    note = f"\n{args.note}\n" if args.note else ""
    update_section("mmi-slice", header + "\n" + "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()
