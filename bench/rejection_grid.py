"""Rejection tuning grid of the commands recipe (issue 7): garbage phone bonus x acoustic scale, per model.

On a trained commands system (recipes/commands/work, or --dir; its data/{dev,oov_fsdd,oov_synth},
data/lang_test, data/local/fillers_and_silence.txt and exp/<model>/final.mdl), for every garbage
phone bonus b (make-grammar --garbage-phone-bonus, the other grammar options as run.sh stage 3
sets them) and acoustic scale a: the grammar data/lang_commands_gb<b>, the graph
exp/<model>/graph_gb<b> (nnet2 uses tri3b's tree, so tri3b's graph), and decode-commands
--exact-llr of dev + both OOV sets into exp/<model>/decode_<set>_gb<b>_a<a>; existing outputs are
reused, so a grid can be extended. Then `kaldilite tune-rejection` per model: each setting with
its llr_total threshold 2-fold cross-calibrated by speaker, the setting + threshold cross-tuned
(chosen on the other fold of speakers), and the choice tuned on all of dev + oov_fsdd (what
ships). oov_synth is reported only. Writes the `commands-rejection-tuning` section of BENCHMARKS.md.

Run it on a COPY of a work dir (it writes new grammars, graphs and decodes into it):
  cp -al recipes/commands/work /tmp/grid && .venv/bin/python bench/rejection_grid.py --dir /tmp/grid
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KALDILITE = str(Path(sys.executable).parent / "kaldilite")


def run(*args):
    subprocess.run([KALDILITE, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def build_and_decode(work, model, bonus, acwt, sets, nj, beam, lattice_beam, fmllr_hypothesis="garbage"):
    lang = work / f"data/lang_commands_gb{bonus}"
    if not (lang / "G.fst").is_file():
        run("make-grammar", "--fillers", work / "data/local/fillers_and_silence.txt", "--garbage", "true",
            "--garbage-cost", "0.0", "--garbage-phone-bonus", bonus, REPO / "lang/en/commands.txt",
            work / "data/lang_test", lang)
    graph_model = "tri3b" if model == "nnet2" else model
    graph = work / f"exp/{graph_model}/graph_gb{bonus}"
    if not (graph / "HCLG.fst").is_file():
        run("mkgraph", lang, work / f"exp/{graph_model}", graph)
    for x in sets:
        out = work / f"exp/{model}/decode_{x}_gb{bonus}_a{acwt}"
        if not (out / "measures.jsonl").is_file():
            print(f"{model} bonus {bonus} acwt {acwt}: decoding {x}", file=sys.stderr, flush=True)
            data = work / f"data/{x}"
            if model == "nnet2" and (work / f"data/{x}_hires/feats.scp").is_file():
                data = work / f"data/{x}_hires"  # the recipe's DNN reads 40-dim hires MFCC (nnet_feats=hires)
            run("decode-commands", "--exact-llr", "--nj", nj, "--beam", beam, "--lattice-beam", lattice_beam,
                "--acwt", acwt, "--fmllr-hypothesis", fmllr_hypothesis, graph, data, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(REPO / "recipes/commands/work"))
    parser.add_argument("--models", default="nnet2 tri3b tri2b tri1 mono")
    parser.add_argument("--bonuses", default="0 1 2 3 3.6")
    parser.add_argument("--acwts", default="0.1 0.05")
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--beam", default="13.0")
    parser.add_argument("--lattice-beam", default="10.0")
    parser.add_argument("--fmllr-hypothesis", default="garbage", choices=["best", "garbage"],
                        help="SAT models' fMLLR hypothesis (run.sh's sat_fmllr_hypothesis).")
    parser.add_argument("--no-decode", action="store_true", help="Only tabulate the decodes that exist.")
    args = parser.parse_args()
    work = Path(args.dir).resolve()
    os.chdir(work)
    sets = ["dev", "oov_fsdd", "oov_synth"]
    tables = []
    for model in args.models.split():
        if not (work / f"exp/{model}/final.mdl").is_file():
            continue
        settings = []
        for bonus in args.bonuses.split():
            for acwt in args.acwts.split():
                if not args.no_decode:
                    build_and_decode(work, model, bonus, acwt, sets, args.nj, args.beam, args.lattice_beam,
                                     args.fmllr_hypothesis)
                if all((work / f"exp/{model}/decode_{x}_gb{bonus}_a{acwt}/measures.jsonl").is_file() for x in sets):
                    settings.append(f"gb{bonus}_a{acwt}")
        if not settings:
            continue
        cmd = [KALDILITE, "tune-rejection", "--commands", str(REPO / "lang/en/commands.txt"),
               "--oov", "oov_fsdd=data/oov_fsdd", "--oov-report-only", "oov_synth=data/oov_synth"]
        for s in settings:
            cmd += ["--setting", s]
        table = subprocess.run(cmd + ["data/dev", f"exp/{model}"], check=True, capture_output=True,
                               text=True).stdout
        tables.append(table)
        print(table, flush=True)
    header = (f"## Rejection tuning grid, commands recipe (`bench/rejection_grid.py`)\n\n{machine_line()}; "
              f"work dir `{work}`. Settings `gb<b>_a<a>`: make-grammar --garbage-phone-bonus b, decode-commands "
              f"--acwt a (--exact-llr, beam {args.beam}, lattice beam {args.lattice_beam}). Command acc on the 360 "
              "dev commands; FA target 5% on dev fillers + noise + oov_fsdd. Rows: each setting with its llr_total "
              "threshold 2-fold cross-calibrated by speaker; `cross-tuned`: setting AND threshold chosen on the "
              "other fold of speakers (the honest figure of the grid); `tuned on all`: the choice on all of dev + "
              "oov_fsdd (optimistic, it is what ships). oov_synth: report only.\n")
    # The first row of each table is its header: keep one.
    body = [t.splitlines() for t in tables]
    lines = body[0][:2] + [row for t in body for row in t[2:]] if body else []
    update_section("commands-rejection-tuning", header + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
