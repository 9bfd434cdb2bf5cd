"""Online decoding: agreement with the offline decoder, real-time factor and latency.

For every utterance of a test set (default: the FSDD speaker-independent test set, 1000
utterances, with the digits monophone system of recipes/digits/work_independent):

1. offline: `decode` as the recipe does it (feats.scp, per-speaker CMVN from cmvn.scp), same
   model, graph and decoder options as the bundle;
2. online: the wav streamed in 10 ms chunks through `OnlineRecognizer` (a fresh recognizer per
   utterance: online CMVN from the global prior only, as for a new user), words compared;
3. the same, with online-CMVN statistics carried from utterance to utterance of each speaker
   (Kaldi's online2 tools do this with --spk2utt);
4. control: the offline decoder on the batch online-CMVN features of each utterance, which must
   give exactly the streamed words (streaming changes nothing but the normalization);
5. RTF and latency: each utterance followed by 0.6 s of background noise at the recording's own
   noise floor (Gaussian, the RMS of its quietest 10 ms), streamed in 10 ms chunks with one
   BLAS thread; the endpoint rules of conf/online.conf end the utterance. Latency is measured
   on a simulated real-time clock: chunk k arrives at its end time, processing starts when
   the chunk has arrived and the previous one is done, and the result's latency is the clock
   when it is out minus the end of speech (the end of its last non-silence frame).

Usage: .venv/bin/python bench/online.py [--work recipes/digits/work_independent] [--limit N]
"""

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHUNK_SECONDS = 0.01
PAD_SECONDS = 0.6


def offline_words(bundle, data_dir, utts):
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.pipeline import load_features

    opts = bundle.online_opts
    out = {}
    for utt, feats in load_features(data_dir, bundle.pipeline, utts):
        result = decode_utterance(bundle.graph, bundle.scorer.log_likelihoods(feats), bundle.tid_to_pdf,
                                  beam=opts.beam, max_active=opts.max_active, min_active=opts.min_active,
                                  acoustic_scale=opts.acoustic_scale)
        out[utt] = tuple(bundle.words.symbol(w) for w in result.words) if result else ()
    return out


def batch_online_cmvn_words(bundle, wave, state):
    """The offline decoder on features normalized by OnlineCmvn over the whole utterance at once."""
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.cmvn import OnlineCmvn
    from kaldilite.feat.extract import compute_mfcc

    opts = bundle.online_opts
    raw = compute_mfcc(wave, bundle.mfcc_opts)
    normalized = OnlineCmvn(raw, bundle.cmvn_opts, state).get_frames(0, len(raw))
    rest = dataclasses.replace(bundle.pipeline, cmvn="none", norm_vars=False)
    feats = rest.apply(normalized)
    result = decode_utterance(bundle.graph, bundle.scorer.log_likelihoods(feats), bundle.tid_to_pdf,
                              beam=opts.beam, max_active=opts.max_active, min_active=opts.min_active,
                              acoustic_scale=opts.acoustic_scale)
    return tuple(bundle.words.symbol(w) for w in result.words) if result else ()


def stream(recognizer, wave, rate, chunk_seconds=CHUNK_SECONDS, clock=False):
    """Feed `wave` in chunks; returns (results, processing seconds, [(result, virtual latency)])."""
    step = int(round(chunk_seconds * rate))
    results, latencies = [], []
    busy_until = 0.0
    processing = 0.0
    for pos in range(0, len(wave), step):
        arrives = min(pos + step, len(wave)) / rate
        t0 = time.perf_counter()
        out = recognizer.accept(wave[pos:pos + step])
        spent = time.perf_counter() - t0
        processing += spent
        busy_until = max(busy_until, arrives) + spent
        for r in out:
            latencies.append((r, busy_until - r.end))
        results += out
    t0 = time.perf_counter()
    out = recognizer.input_finished()
    spent = time.perf_counter() - t0
    processing += spent
    busy_until = max(busy_until, len(wave) / rate) + spent
    for r in out:
        latencies.append((r, busy_until - r.end))
    results += out
    return results, processing, latencies


def words_of(results):
    words = []
    for r in results:
        words += [w for w in r.words if w not in ("!SIL", "<eps>")]
    return tuple(words)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(REPO / "recipes/digits/work_independent"))
    parser.add_argument("--mfcc-config", default=str(REPO / "recipes/digits/conf/mfcc.conf"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="override an online.conf option, e.g. --set endpoint.rule2.min-trailing-silence=0.05")
    args = parser.parse_args()

    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.online.bundle import ModelBundle, export_model
    from kaldilite.online.recognizer import OnlineRecognizer
    from kaldilite.train.gmm_steps import single_threaded_blas

    work = Path(args.work)
    data = DataDir.load(work / "data/test")
    utts = sorted(data.wav_scp)
    if args.limit:
        utts = utts[:args.limit]
    with tempfile.TemporaryDirectory() as tmp, single_threaded_blas():
        export_model(work / "exp/mono", work / "exp/mono/graph", Path(tmp) / "bundle", mfcc_config=args.mfcc_config,
                     data_dir=work / "data/train")
        overrides = dict(item.split("=", 1) for item in args.set)
        bundle = ModelBundle.load(Path(tmp) / "bundle", overrides=overrides)
        rate = bundle.sample_rate
        offline = offline_words(bundle, work / "data/test", utts)
        fresh, carried, control, streamed = {}, {}, {}, {}
        no_endpoints = dataclasses.replace(bundle.online_opts, do_endpointing=False)
        speaker_state = {}
        stats = {"audio": 0.0, "processing": 0.0, "latency": [], "latency_file_end": [], "endpoints": {},
                 "padded_agree": 0}
        rng = np.random.default_rng(0)
        warm = OnlineRecognizer(bundle)
        stream(warm, read_audio(data.wav_scp[utts[0]]), rate)  # numba compilation out of the timings
        for utt in utts:
            wave = read_audio(data.wav_scp[utt])
            spk = data.utt2spk[utt]
            # 2. fresh recognizer, the utterance alone, in 10 ms chunks
            results, _, _ = stream(OnlineRecognizer(bundle, source_name=utt), wave, rate)
            fresh[utt] = words_of(results)
            # 4. control: batch online CMVN + offline decoder vs pure streaming (no endpointing)
            control[utt] = batch_online_cmvn_words(bundle, wave, bundle.cmvn_state())
            results, _, _ = stream(OnlineRecognizer(bundle, no_endpoints, source_name=utt), wave, rate)
            streamed[utt] = words_of(results)
            # 3. carried speaker CMVN state: one recognizer per speaker, a new stream per file
            recognizer = speaker_state.setdefault(spk, OnlineRecognizer(bundle, source_name=utt))
            recognizer.new_stream(utt)
            results, _, _ = stream(recognizer, wave, rate)
            carried[utt] = words_of(results)
            # 5. padded with noise-floor "silence": RTF and latency with the endpoint rules
            frames = wave[:len(wave) // 80 * 80].reshape(-1, 80)
            floor = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).min()) if len(frames) else 1.0
            padded = np.concatenate([wave, rng.normal(0.0, floor, int(PAD_SECONDS * rate)).astype(np.float32)])
            results, processing, latencies = stream(OnlineRecognizer(bundle, source_name=utt), padded, rate)
            stats["audio"] += len(padded) / rate
            stats["processing"] += processing
            if words_of(results) == fresh[utt]:
                stats["padded_agree"] += 1
            for result, latency in latencies:
                stats["latency"].append(latency)
                stats["latency_file_end"].append(latency + result.end - len(wave) / rate)
                stats["endpoints"][result.endpoint] = stats["endpoints"].get(result.endpoint, 0) + 1

    n = len(utts)
    agree_fresh = sum(fresh[u] == offline[u] for u in utts)
    agree_carried = sum(carried[u] == offline[u] for u in utts)
    agree_control = sum(control[u] == streamed[u] for u in utts)
    split = sum(fresh[u] != streamed[u] for u in utts)
    ref = {u: tuple(data.text[u].split()) for u in utts}
    correct = {name: sum(hyp[u] == ref[u] for u in utts) for name, hyp in
               (("offline", offline), ("online", fresh), ("online, carried CMVN", carried))}
    lat = sorted(stats["latency"])
    lat_end = sorted(stats["latency_file_end"])

    def pct(values, q):
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")

    rtf = stats["processing"] / stats["audio"]
    lines = [
        "## Online decoding (`bench/online.py`)",
        "",
        f"FSDD speaker-independent test set ({n} utterances, {stats['audio']:.0f} s streamed incl. padding), digits "
        "monophone GMM (recipes/digits/work_independent), 10 ms chunks, one BLAS thread. " + machine_line(),
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| online words = offline decoder words (fresh recognizer per utterance, global CMVN prior) | "
        f"{agree_fresh}/{n} ({100 * agree_fresh / n:.1f}%) |",
        f"| ... with online-CMVN stats carried across each speaker's utterances | "
        f"{agree_carried}/{n} ({100 * agree_carried / n:.1f}%) |",
        f"| streamed words (no endpointing) = offline decoder on batch online-CMVN features (control) | "
        f"{agree_control}/{n} ({100 * agree_control / n:.1f}%) |",
        f"| utterances the endpoint rules split in two (a second word heard after a pause) | {split}/{n} |",
        f"| utterance accuracy: offline / online / online carried | {100 * correct['offline'] / n:.1f}% / "
        f"{100 * correct['online'] / n:.1f}% / {100 * correct['online, carried CMVN'] / n:.1f}% |",
        f"| padded stream (endpoint rules) gives the unpadded words | {stats['padded_agree']}/{n} |",
        f"| real-time factor (processing / audio) | {rtf:.4f} (target < 0.05) |",
        f"| latency end of speech -> result, median / p95 | {1000 * pct(lat, 0.5):.0f} ms / "
        f"{1000 * pct(lat, 0.95):.0f} ms "
        "(targets 200 / 400 ms) |",
        f"| latency from the end of the (trimmed) file, median / p95 | {1000 * pct(lat_end, 0.5):.0f} ms / "
        f"{1000 * pct(lat_end, 0.95):.0f} ms |",
        f"| endpoints by rule | {', '.join(f'{k}: {v}' for k, v in sorted(stats['endpoints'].items()))} |",
        "",
        "Where online and offline differ it is the normalization: offline CMVN subtracts the test speaker's mean "
        "over all of their utterances (cmvn.scp), online CMVN only knows the frames heard so far plus the "
        "training-set mean as a prior (200 frames' worth), so on a short utterance of an unseen speaker the "
        "mean is mostly the training speakers'. Carrying the statistics across a speaker's utterances closes "
        "most of the gap; the control row shows that streaming itself (chunking, look-ahead, endpointing "
        "restarts) changes nothing.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_report and not args.limit and not args.set:
        update_section("online", text)


if __name__ == "__main__":
    main()
