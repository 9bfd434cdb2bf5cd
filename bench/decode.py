"""Benchmark: graph building (mkgraph) and the numba beam decoder.

1. mkgraph for the digits grammar over the lang/en lexicon (Kaldi on this machine: 0.1 s) and
   for a 200-command grammar with fillers and the garbage loop over a 5,000-word CMUdict
   lexicon (bench/lang.py's setup), monophone and triphone (context-independent tree) H.
2. The decoder on the 200-command HCLG with flat synthetic log-likelihoods (a hard case: many
   tokens survive), against an exact dense Viterbi in vectorized numpy on the same graph and
   frames (the straightforward peer; same best cost with an unbounded beam).
3. With ``--fsdd-exp EXP --fsdd-data DATA``: ``kaldilite decode --nj 2`` on the FSDD test set
   (Kaldi on this machine: 1000 utterances, 372 s of audio, in 5.2 s with --nj 2).

Figures go into BENCHMARKS.md (section "decode").

Run: .venv/bin/python bench/decode.py [--frames 2000] [--fsdd-exp exp/mono --fsdd-data data/test]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KALDI_DIGITS_GRAPH_SECONDS = 0.1
KALDI_FSDD_DECODE_SECONDS = 5.2


def mono_and_triphone_models(lang):
    from kaldilite.hmm import ContextDependency, Topology, TransitionModel, monophone_tree

    topo = Topology.read(lang.topo_path)
    mono = monophone_tree(lang.roots, topo)
    tri = ContextDependency(3, 1, ["table", 1, mono.root[2]], mono.phone_num_pdf_classes)
    return (mono, TransitionModel(topo, mono)), (tri, TransitionModel(topo, tri))


def time_mkgraph(lang, tree, tm, repeat):
    from kaldilite.graph.mkgraph import build_hclg

    best, graph = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        graph, _ = build_hclg(lang, tm, tree)
        best = min(best, time.perf_counter() - start)
    return best, graph


def digits_lang(work):
    from kaldilite.lang import LangDir, make_dict_dir, prepare_lang
    from kaldilite.lang.grammar import make_grammar

    digits = "zero one two three four five six seven eight nine".split()
    make_dict_dir(digits, work / "dict_digits")
    prepare_lang(work / "dict_digits", "<UNK>", work / "tmp_digits", work / "lang_digits_base")
    (work / "digits.txt").write_text("".join(d + "\n" for d in digits))
    make_grammar(work / "digits.txt", work / "lang_digits_base", work / "lang_digits")
    return LangDir.load(work / "lang_digits")


def commands_lang(work):
    import lang as bench_lang

    from kaldilite.lang import LangDir

    bench_lang.run_once(work, bench_lang.pick_words())
    return LangDir.load(work / "lang_cmd")


def dense_viterbi(graph, loglikes, tid_to_pdf, acoustic_scale):
    """Exact frame-synchronous Viterbi over every arc with numpy (the peer): best final cost."""
    src = graph.arc_sources().astype(np.int64)
    emit = graph.arc_ilabel > 0
    e_src, e_next, e_w = src[emit], graph.arc_next[emit], graph.arc_weight[emit].astype(np.float64)
    e_pdf = tid_to_pdf[graph.arc_ilabel[emit]]
    p_src, p_next, p_w = src[~emit], graph.arc_next[~emit], graph.arc_weight[~emit].astype(np.float64)

    def closure(cost):
        while True:
            new = cost.copy()
            np.minimum.at(new, p_next, cost[p_src] + p_w)
            if np.array_equal(new, cost):
                return cost
            cost = new

    cost = np.full(graph.num_states, np.inf)
    cost[graph.start] = 0.0
    cost = closure(cost)
    for frame in loglikes:
        new = np.full(graph.num_states, np.inf)
        np.minimum.at(new, e_next, cost[e_src] + e_w - acoustic_scale * frame[e_pdf].astype(np.float64))
        cost = closure(new)
    return float(np.min(cost + graph.final_cost))


def bench_decoder(graph, tm, num_frames):
    from kaldilite.decode.decoder import BeamDecoder, DecoderOptions

    rng = np.random.default_rng(0)
    loglikes = rng.normal(-60.0, 8.0, size=(num_frames, tm.num_pdfs)).astype(np.float32)
    rows = []
    for beam, max_active in ((13.0, 7000), (13.0, 1000), (8.0, 7000), (1e10, 10**9)):
        decoder = BeamDecoder(graph, tm.tid_to_pdf, DecoderOptions(beam=beam, max_active=max_active))
        decoder.init()
        decoder.advance(loglikes[:5])  # compile / load the numba cache outside the timing
        start = time.perf_counter()
        decoder.init()
        decoder.advance(loglikes)
        result = decoder.finalize()
        elapsed = time.perf_counter() - start
        rows.append((beam, max_active, elapsed, float(decoder.active_per_frame().mean()), result.cost))
    peer_frames = min(num_frames, 300)
    start = time.perf_counter()
    exact = dense_viterbi(graph, loglikes[:peer_frames], tm.tid_to_pdf, 0.1)
    peer_seconds = (time.perf_counter() - start) * num_frames / peer_frames
    unbounded = BeamDecoder(graph, tm.tid_to_pdf, DecoderOptions(beam=1e10, max_active=10**9))
    unbounded.init()
    unbounded.advance(loglikes[:peer_frames])
    assert abs(unbounded.finalize().cost - exact) < 1e-3 * max(1.0, abs(exact)), "decoder and peer disagree"
    return rows, peer_seconds


def bench_fsdd(exp, data, work):
    env = dict(os.environ)
    command = [str(REPO / ".venv" / "bin" / "kaldilite"), "decode", "--nj", "2", "--acwt", "0.1",
               str(Path(exp) / "graph"), str(data), str(work / "decode_fsdd")]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fsdd-exp", help="exp dir with final.mdl, tree and graph/ (e.g. recipes/digits/.../exp/mono)")
    parser.add_argument("--fsdd-data", help="FSDD test data dir with feats.scp and text")
    args = parser.parse_args(argv)

    lines = [f"Machine: {machine_line()}.", "", "| graph | context | HCLG states | HCLG arcs | mkgraph s | Kaldi s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        graphs = {}
        for name, lang in (("digits", digits_lang(work)), ("200 commands + garbage, 5k lexicon", commands_lang(work))):
            for context, (tree, tm) in zip(("mono", "tri (CI tree)"), mono_and_triphone_models(lang)):
                seconds, graph = time_mkgraph(lang, tree, tm, args.repeat)
                kaldi = f"{KALDI_DIGITS_GRAPH_SECONDS:.2f}" if name == "digits" and context == "mono" else ""
                lines.append(f"| {name} | {context} | {graph.num_states} | {graph.num_arcs} | {seconds:.3f} | {kaldi} |")
                graphs[(name, context)] = (graph, tm)
                print(lines[-1], flush=True)

        graph, tm = graphs[("200 commands + garbage, 5k lexicon", "mono")]
        rows, peer_seconds = bench_decoder(graph, tm, args.frames)
        lines += ["", f"Decoder on the 200-command mono HCLG, {args.frames} frames of flat synthetic "
                  "log-likelihoods (N(-60, 8) per pdf: many tokens survive), acoustic scale 0.1. Peer: exact "
                  "dense Viterbi in numpy over all arcs (same best cost as the unbounded beam, checked; the unbounded "
                  "row also keeps a backpointer per token, which the peer does not).", "",
                  "| beam | max-active | µs/frame | tokens expanded/frame | speed-up vs numpy peer |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for beam, max_active, seconds, tokens, _ in rows:
            beam_text = "inf" if beam > 1e9 else f"{beam:g}"
            active_text = "inf" if max_active > 1e8 else str(max_active)
            ratio = peer_seconds / seconds
            lines.append(f"| {beam_text} | {active_text} | {seconds / args.frames * 1e6:.1f} | {tokens:.0f} | "
                         f"{ratio:.1f}x |" if ratio < 10 else f"| {beam_text} | {active_text} | "
                         f"{seconds / args.frames * 1e6:.1f} | {tokens:.0f} | {ratio:.0f}x |")
            print(lines[-1], flush=True)

        if args.fsdd_exp and args.fsdd_data:
            seconds, wer = bench_fsdd(args.fsdd_exp, args.fsdd_data, work)
            blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
            lines += ["", f"FSDD test set, `kaldilite decode --nj 2` end to end (model loading, features, GMM "
                      f"scoring, decoding, scoring; OPENBLAS_NUM_THREADS={blas}): {seconds:.2f} s "
                      f"(Kaldi: {KALDI_FSDD_DECODE_SECONDS} s, ratio {KALDI_FSDD_DECODE_SECONDS / seconds:.1f}x); {wer}"]
            print(lines[-1], flush=True)
    update_section("decode", "## Graph building and decoding (bench/decode.py)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
