"""Benchmark: decoding with lattices, confidence and the rejection rule, against 1-best decoding.

Real speech and a real model: the FSDD digits monophone system of recipes/digits (built by its
run.sh; ``--exp``/``--data``/``--lang`` point elsewhere), with a command grammar of five digits
(zero..four) plus the garbage phone loop, so that the other five digits are out-of-vocabulary.
On the test set (1000 utterances, single-threaded BLAS, one process) it times:

1. acoustic scoring (GMM log-likelihoods, BLAS);
2. 1-best decoding (`BeamDecoder`, lattice generation off) -- the peer;
3. decoding with lattice generation (``lattice_beam`` 6), determinization, confidence and
   the rejection decision (`kaldilite.decode.rejection.Recognizer`).

It reports real-time factors in CPU time (process time of this single-threaded process, audio
at 10 ms per frame: the shared machine's load does not enter), the lattice overhead as a ratio to
1-best, lattice sizes, and what the default rule decides (command accuracy on zero..four,
false accepts on five..nine) -- the mono model and an untuned rule, so a sanity figure only.
Figures go into BENCHMARKS.md (section "lattice").

Run: .venv/bin/python bench/lattice.py [--exp recipes/digits/work_independent/exp/mono ...]

With ``--commands-work DIR`` (a commands recipe build: DIR/exp/<model>/graph_commands,
DIR/data/dev, DIR/data/dev_hires for nnet2) it times instead what issue #7's speed bar is about:
decode-commands' job (`kaldilite.train.decode_commands.decode_commands_job`) on the whole dev set
in one job, with stage 9's options (--exact-llr, beam 13, lattice beam 10, acwt 0.1; SAT models
with --fmllr-hypothesis best, as run.sh), per model: CPU seconds of scoring + search + lattice +
confidence (+ SAT's first pass and fMLLR) over audio seconds, best of ``--repeat`` runs.
Figures go into BENCHMARKS.md (section "lattice_commands").
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "recipes" / "digits" / "work_independent"
COMMANDS = ["zero", "one", "two", "three", "four"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", default=str(WORK / "exp" / "mono"))
    parser.add_argument("--data", default=str(WORK / "data" / "test"))
    parser.add_argument("--lang", default=str(WORK / "data" / "lang"))
    parser.add_argument("--acwt", type=float, default=0.083333)
    parser.add_argument("--no-report", action="store_true", help="Print only; leave BENCHMARKS.md alone.")
    parser.add_argument("--commands-work", help="A commands recipe build: time decode-commands on its dev set.")
    parser.add_argument("--models", default="tri2b,tri3b,nnet2", help="With --commands-work: the models timed.")
    parser.add_argument("--repeat", type=int, default=2, help="With --commands-work: runs per model (best taken).")
    args = parser.parse_args(argv)
    if args.commands_work:
        return commands_rtf(Path(args.commands_work), args.models.split(","), args.repeat, args.no_report)
    if not (Path(args.exp) / "final.mdl").is_file() or not (Path(args.data) / "feats.scp").is_file():
        print(f"bench/lattice: {args.exp}/final.mdl or {args.data}/feats.scp missing; run recipes/digits/run.sh "
              "--stage 0 --stop-stage 4 first (or pass --exp/--data/--lang)")
        return 1

    from kaldilite.decode.decoder import BeamDecoder
    from dataclasses import replace

    from kaldilite.decode.rejection import Recognizer, RecognizerOptions, RejectionRule, read_fillers
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.lang.grammar import make_grammar
    from kaldilite.train.gmm_steps import single_threaded_blas

    tm, am, pipeline, _ = load_model(Path(args.exp) / "final.mdl")
    tree = ContextDependency.read(Path(args.exp) / "tree")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "commands.txt").write_text("\n".join(COMMANDS) + "\n")
        make_grammar(tmp / "commands.txt", args.lang, tmp / "lang_cmd", garbage=True)
        graph = mkgraph(tmp / "lang_cmd", tmp / "graph", tm, tree)
        words = SymbolTable.read(tmp / "graph" / "words.txt")
        fillers = read_fillers(tmp / "graph")
    text = dict(DataDir.load(args.data).text)
    opts = RecognizerOptions(acoustic_scale=args.acwt, lattice_beam=6.0, exact_llr=True)
    with single_threaded_blas():
        features = list(load_features(args.data, pipeline))
        start = time.process_time()
        loglikes = [(utt, am.log_likelihoods(feats)) for utt, feats in features]
        scoring = time.process_time() - start
        frames = sum(len(x) for _, x in loglikes)
        audio = frames * 0.01

        best = BeamDecoder(graph, tm.tid_to_pdf, opts.decoder_options())
        recognizer = Recognizer(graph, tm.tid_to_pdf, words, fillers, RejectionRule(), opts)
        clipped = Recognizer(graph, tm.tid_to_pdf, words, fillers, RejectionRule(), replace(opts, exact_llr=False))
        for _, x in loglikes[:5]:  # numba's cached code loads on first use
            best.init(), best.advance(x), best.finalize(), recognizer.recognize(x), clipped.recognize(x)
        timings = {"1-best": [], "lattice": [], "clipped": []}
        decisions, clipped_decisions = {}, {}
        for _ in range(3):  # best of 3: the machine is shared
            start = time.process_time()
            for _, x in loglikes:
                best.init()
                best.advance(x)
                best.finalize()
            timings["1-best"].append(time.process_time() - start)
            start = time.process_time()
            for utt, x in loglikes:
                decisions[utt] = recognizer.recognize(x)
            timings["lattice"].append(time.process_time() - start)
            start = time.process_time()
            for utt, x in loglikes:
                clipped_decisions[utt] = clipped.recognize(x)
            timings["clipped"].append(time.process_time() - start)
        sizes = []
        forced = {}
        no_rejection = RejectionRule(enabled=False)
        for utt, x in loglikes:
            recognizer.start()
            recognizer.advance(x)
            hyps = recognizer.word_sequences()
            forced[utt] = no_rejection.decide(hyps, fillers)
            if len(sizes) < 200:
                raw = recognizer.decoder.get_raw_lattice(opts.lattice_beam)
                sizes.append((recognizer.decoder._n_lk, raw.num_links if raw else 0,
                              recognizer.decoder.get_lattice(opts.lattice_beam).num_states))
    one_best, lattice, lattice_only = min(timings["1-best"]), min(timings["lattice"]), min(timings["clipped"])
    in_vocab = [u for u in text if text[u] in COMMANDS]
    oov = [u for u in text if text[u] not in COMMANDS]
    accuracy = sum(decisions[u].label == text[u] for u in in_vocab) / len(in_vocab)
    false_accepts = sum(decisions[u].accepted for u in oov) / len(oov)
    forced_fa = sum(forced[u].accepted for u in oov) / len(oov)
    # Which score separates commands from OOV better: the operating point at <= 5% false accepts
    # (threshold chosen on this same set: a comparison of the scores, not a calibrated result).
    separation = []
    for name, score, source in (("confidence", "confidence", decisions), ("exact llr", "llr", decisions),
                                ("lattice llr (clipped)", "llr", clipped_decisions)):
        rule = RejectionRule(score=score)
        values = sorted({getattr(source[u].measures, score) for u in text} - {None})
        best_point = None
        for threshold in values:
            r = rule.with_threshold(threshold)
            out = {u: r.decide_measures(source[u].measures, source[u].num_frames) for u in text}
            fa = sum(out[u].accepted for u in oov) / len(oov)
            if fa <= 0.05:
                acc = sum(out[u].label == text[u] for u in in_vocab) / len(in_vocab)
                best_point = (threshold, acc, fa)
                break
        separation.append((name, best_point))
    sizes = np.array(sizes, float).mean(axis=0)
    rows = [
        "| step | CPU seconds | RTF |",
        "| --- | --- | --- |",
        f"| GMM scoring (BLAS, 1 thread) | {scoring:.2f} | {scoring / audio:.4f} |",
        f"| 1-best decoding (peer) | {one_best:.2f} | {one_best / audio:.4f} |",
        f"| lattice + determinize + confidence + rule (LLR from the lattice; the default) | {lattice_only:.2f} | "
        f"{lattice_only / audio:.4f} |",
        f"| the same + exact LLR (constrained search of the side missing from the lattice, exact_llr=True) | {lattice:.2f} | "
        f"{lattice / audio:.4f} |",
        f"| scoring + lattice decoding total | {scoring + lattice:.2f} | {(scoring + lattice) / audio:.4f} |",
    ]
    markdown = "\n".join([
        "## Lattices, confidence and rejection (bench/lattice.py)",
        "",
        f"FSDD test set, {len(loglikes)} utterances, {audio:.0f} s of audio; monophone GMM of recipes/digits; "
        f"grammar: {', '.join(COMMANDS)} + garbage phone loop ({graph.num_states} states, {graph.num_arcs} arcs); "
        f"--acwt {args.acwt}, --beam {opts.beam}, --lattice-beam {opts.lattice_beam}. {machine_line()}.",
        "",
        *rows,
        "",
        f"Lattice decoding costs {lattice_only / one_best:.1f}x the 1-best search (per utterance: {sizes[0]:.0f} arrivals "
        f"recorded, {sizes[1]:.0f} links after pruning, {sizes[2]:.1f} states in the determinized word lattice).",
        f"Default rule (confidence >= 0.5, untuned, mono model; exact LLR run): command accuracy {accuracy:.1%} on zero..four, "
        f"false accepts {false_accepts:.1%} on five..nine (OOV). With the rule disabled (the best command path "
        f"in the lattice is output even when garbage wins) false accepts are {forced_fa:.1%}.",
        "At <= 5% false accepts (threshold picked on this set, to compare the scores): " + "; ".join(
            f"{score} >= {point[0]:.3g}: command accuracy {point[1]:.1%} (FA {point[2]:.1%})" if point else
            f"{score}: 5% FA not reachable" for score, point in separation) + ".",
    ])
    print(markdown)
    if not args.no_report:
        update_section("lattice", markdown)
    return 0


def commands_rtf(work, models, repeat, no_report):
    """decode-commands' job on the commands dev set, one job per model: CPU RTF (see the docstring)."""
    from kaldilite.online.bundle import model_type_of
    from kaldilite.train.decode_commands import decode_commands_job, is_speaker_adapted
    from kaldilite.lang.langdir import read_phone_list

    opts = dict(beam=13.0, lattice_beam=10.0, acoustic_scale=0.1, exact_llr=True)
    rows = ["| model | CPU seconds | audio seconds | RTF |", "| --- | --- | --- | --- |"]
    for model in models:
        exp = work / "exp" / model
        if not (exp / "final.mdl").is_file():
            print(f"bench/lattice: {exp}/final.mdl missing; skipping {model}")
            continue
        data = work / "data" / "dev"
        if model_type_of(exp / "final.mdl") != "gmm" and (work / "data" / "dev_hires" / "feats.scp").is_file():
            data = work / "data" / "dev_hires"  # the recipe's DNN input (nnet_feats=hires)
        if not (exp / "graph_commands").is_dir() or not (data / "feats.scp").is_file():
            print(f"bench/lattice: {exp}/graph_commands or {data}/feats.scp missing; skipping {model}")
            continue
        sat = is_speaker_adapted(exp / "final.mdl")
        job_opts = dict(opts, fmllr_hypothesis="best") if sat else opts
        silence = read_phone_list(exp / "graph_commands" / "phones" / "silence.int", "re-run mkgraph") if sat else ()
        cpu = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(repeat + 1):  # the first run loads numba's cached code
                results, _, seconds = decode_commands_job(exp / "graph_commands", exp / "final.mdl", data, tmp, 1,
                                                          job_opts, silence)
                cpu.append(seconds)
        audio = sum(n for _, _, n in results) * 0.01
        best = min(cpu[1:]) if len(cpu) > 1 else cpu[0]
        rows.append(f"| {model}{' (SAT, two passes)' if sat else ''} | {best:.2f} | {audio:.1f} | {best / audio:.4f} |")
        print(rows[-1], flush=True)
    markdown = "\n".join([
        "## decode-commands with lattices + exact-LLR confidence, commands dev (bench/lattice.py --commands-work)",
        "",
        f"{work}: dev set in one job (--nj 1), stage 9's options (--exact-llr --beam 13 --lattice-beam 10 --acwt 0.1; "
        f"SAT: --fmllr-hypothesis best); CPU time of scoring + search + lattice + confidence (SAT: + first pass + "
        f"fMLLR), best of {repeat}. Issue #7's targets: RTF < 0.02 (GMM), < 0.03 (DNN). {machine_line()}.",
        "",
        *rows,
    ])
    print(markdown)
    if not no_report:
        update_section("lattice_commands", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
