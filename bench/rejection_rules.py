"""Rejection rules compared on a decoded commands system (issue 7): which score decides, cross-validated by speaker.

On a commands work dir whose exp/<model>/decode_{dev,oov_fsdd,...} hold measures.jsonl from
decode-commands --exact-llr (SAT models also --first-pass-measures), every rule below is
calibrated for the FA target on dev + oov_fsdd exactly as the recipe's RESULTS row is
(`commands_results_rows`: 2-fold by speaker, each fold decided by the rule -- logistic weights
included -- fitted on the other fold); report-only sets (oov_synth, the held-out commands
heldout_commands when decoded) are decided by the rule calibrated on all of dev + oov_fsdd. The EER
is over the cross-calibrated scores. The weights of each logistic rule fitted on all of dev +
oov_fsdd are printed (standardized features: a weight is the logit change per standard deviation).

Rules: ``llr_total`` (the recipe's threshold until issue 7's logistic rule), ``confidence``
(label posterior), ``first_pass`` (SAT: llr_total of the speaker-independent pass; the label
still from the adapted pass), ``logistic`` over the default features, each feature alone and
the default set plus the first pass. Writes the ``commands-rejection-rules`` section of BENCHMARKS.md.

  .venv/bin/python bench/rejection_rules.py --dir /tmp/s4/w --models nnet2,tri3b
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

DEFAULT = ["llr_total", "confidence_logit", "command_margin", "command_cost_per_frame"]


def rules(sat):
    from kaldilite.decode.rejection import RejectionRule

    out = [("llr_total", RejectionRule(score="llr_total")),
           ("confidence", RejectionRule(score="confidence"))]
    if sat:
        out.append(("first_pass llr_total", RejectionRule(score="first_pass_llr_total")))
    out.append(("logistic: " + " + ".join(DEFAULT), RejectionRule(score="logistic", logistic={"features": DEFAULT})))
    for feature in DEFAULT[1:]:
        out.append((f"logistic: llr_total + {feature}",
                    RejectionRule(score="logistic", logistic={"features": ["llr_total", feature]})))
    if sat:
        feats = DEFAULT + ["first_pass_llr_total"]
        out.append(("logistic: default + first_pass_llr_total",
                    RejectionRule(score="logistic", logistic={"features": feats})))
        feats = ["first_pass_llr_total", "confidence_logit", "command_margin", "command_cost_per_frame"]
        out.append(("logistic: default with first_pass_llr_total for llr_total",
                    RejectionRule(score="logistic", logistic={"features": feats})))
    return out


def main():
    from kaldilite.cli.commands import commands_results_rows
    from kaldilite.score.commands import read_measures

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / "recipes/commands/work")
    parser.add_argument("--models", default="nnet2,tri3b")
    parser.add_argument("--target-fa", type=float, default=0.05)
    parser.add_argument("--no-report", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--note", default="", help="a sentence for the section (e.g. what each exp dir is)")
    args = parser.parse_args()
    work = args.dir.resolve()
    commands = REPO / "lang/en/commands.txt"
    report_only = [(x, work / "data" / x) for x in ("oov_synth", "heldout_commands") if (work / "data" / x).is_dir()]
    names = ["oov_fsdd"] + [x for x, _ in report_only]
    head = ["model", "rule", "command acc %", "FA dev fillers %"] + [f"FA {n} %" for n in names]
    head += ["FA dev silence %", "EER %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    weights = []
    for model in args.models.split(","):
        exp = work / "exp" / model
        # the first-pass rules need decode-commands --first-pass-measures (a SAT model's dev measures say)
        sat = (exp / "final.alimdl").is_file() and any(
            m.first_pass_llr is not None for m, _ in read_measures(exp / "decode_dev/measures.jsonl").values())
        for name, rule in rules(sat):
            rows = commands_results_rows(work / "data/dev", [exp], commands, args.target_fa,
                                         [("oov_fsdd", work / "data/oov_fsdd")], report_only, rule=rule)
            r = rows[0]
            s = r["scores"]
            cells = [model, name, f"{100 * s.accuracy:.1f}", f"{100 * s.false_accept_rate:.1f}"]
            cells += [f"{100 * r['oov'][n].false_accept_rate:.1f}" if n in r["oov"] else "-" for n in names]
            cells += [f"{100 * s.silence_false_accept_rate:.1f}", f"{100 * r['eer']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
            lg = r["rule"].logistic
            if lg and len(lg["features"]) > 1:
                weights.append(f"- {model}, {name}: bias {lg['bias']:+.2f}; "
                               + ", ".join(f"{f} {w:+.2f}" for f, w in zip(lg["features"], lg["weights"])))
    text = "\n".join([
        "## Rejection rules compared, commands recipe (`bench/rejection_rules.py`)", "",
        f"{machine_line()}; work dir `{work}` (decode-commands --exact-llr, SAT with --first-pass-measures). "
        f"Every rule calibrated for {100 * args.target_fa:g}% FA on dev fillers + noise + oov_fsdd, 2-fold "
        "cross-validated by speaker (logistic weights AND threshold fitted on the other fold); "
        f"{', '.join(x for x, _ in report_only)} report only (rule fitted on all of dev + oov_fsdd). "
        "heldout_commands: each dev command decoded with a grammar without that command (any command output "
        "is a false accept). EER over the cross-validated scores." + (f" {args.note}" if args.note else ""), "",
        *lines, "",
        "Logistic weights fitted on all of dev + oov_fsdd (standardized features: logit change per standard "
        "deviation; command_cost_per_frame is a cost, so a negative weight favours well-fitting commands):", "",
        *weights])
    print("\n".join(weights))
    if not args.no_report:
        update_section("commands-rejection-rules", text)


if __name__ == "__main__":
    main()
