"""Feature extraction for whole data dirs: steps/make_mfcc.sh, make_fbank.sh, compute_cmvn_stats.sh.

`make_features` splits DATA by speaker into nj parts (DATA/splitN/k), runs one job per part
(compute-mfcc-feats / compute-fbank-feats: read each utterance's audio, or its segment of the
recording, compute features, write FEATDIR/raw_<kind>_<name>.k.ark/.scp plus per-job utt2dur
and utt2num_frames under LOGDIR), then joins the parts into DATA/feats.scp, DATA/utt2dur and
DATA/utt2num_frames (sorted, atomic), and writes the config's frame shift to DATA/frame_shift. As in Kaldi, an utterance that fails (unreadable audio,
shorter than one frame, ...) is logged with its reason and skipped; a job with no success fails
the step. `compute_cmvn_stats` writes per-speaker stats (spk2utt) to CMVNDIR and DATA/cmvn.scp.
"""

import logging
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, KaldiliteError, MissingFileError
from kaldilite.feat.extract import compute_fbank, compute_mfcc
from kaldilite.feat.options import FbankOptions, MfccOptions

log = logging.getLogger(__name__)

KINDS = {"mfcc": (MfccOptions, compute_mfcc), "fbank": (FbankOptions, compute_fbank)}


def _progress(iterable, total, description, position=0):
    """tqdm on stderr when it is a terminal; the plain iterable otherwise (logs, pipes, CI)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, position=position, leave=False, file=sys.stderr)


def utterance_audio(data, sample_frequency, allow_downsample, allow_upsample, channel):
    """Yield (utt, waveform or Exception, duration seconds) for every utterance of a data dir (the feature
    jobs' audio; bench/online.py's noise clips).

    With a segments file each recording is read once and cut like Kaldi's extract-segments
    (sample indices start*rate, end*rate truncated; end <= 0 or past the end means the end).
    """
    from kaldilite.io.audio import read_audio

    kwargs = dict(allow_downsample=allow_downsample, allow_upsample=allow_upsample,
                  channel=None if channel < 0 else channel)
    if data.wav_scp is None:
        raise MissingFileError(f"{data.path / 'wav.scp'}: no such file; a data dir needs wav.scp to make features")
    if data.segments is None:
        for utt, spec in data.wav_scp.items():
            try:
                wave = read_audio(spec, sample_frequency, **kwargs)
                yield utt, wave, wave.size / sample_frequency
            except KaldiliteError as exc:
                yield utt, exc, 0.0
        return
    by_recording = {}
    for utt, segment in data.segments.items():
        by_recording.setdefault(segment.recording, []).append((utt, segment))
    for recording in sorted(by_recording):
        try:
            spec = data.wav_scp[recording]
        except KeyError:
            for utt, _ in by_recording[recording]:
                yield utt, InputError(f"{data.path / 'segments'}: recording {recording} is not in wav.scp"), 0.0
            continue
        try:
            wave = read_audio(spec, sample_frequency, **kwargs)
        except KaldiliteError as exc:
            for utt, _ in by_recording[recording]:
                yield utt, exc, 0.0
            continue
        for utt, segment in by_recording[recording]:
            start = int(segment.start * sample_frequency)
            end = int(segment.end * sample_frequency) if segment.end > 0 else wave.size
            end = min(end, wave.size)
            if start >= end:
                yield utt, InputError(f"segment {segment.start}..{segment.end} s lies outside recording {recording} "
                                      f"({wave.size / sample_frequency:.2f} s)"), 0.0
                continue
            yield utt, wave[start:end], (end - start) / sample_frequency


def utterance_seed(dither_seed, utt):
    """Dither seed of one utterance: reproducible, different per utterance, independent of --nj."""
    return (dither_seed, zlib.crc32(utt.encode("utf-8")))


def compute_features_job(kind, opts, part_dir, ark_path, scp_path, utt2dur_path, utt2num_frames_path, channel=-1,
                         job=1):
    """One job of make-mfcc / make-fbank: features for every utterance of the data dir `part_dir`.

    Returns (num_done, num_failed, first failure as 'UTT: reason' or None). Raises KaldiliteError when no
    utterance succeeded.
    """
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import write_matrices
    from kaldilite.utils import atomic_open

    _, compute = KINDS[kind]
    frame = opts.frame_opts
    opts.check()
    data = DataDir.load(part_dir)
    wanted = set(data.utt2spk or ())
    durations, frame_counts, failed = {}, {}, []
    started = time.perf_counter()

    def features():
        total = len(data.segments or data.wav_scp or ())
        audio = utterance_audio(data, frame.sample_frequency, frame.allow_downsample, frame.allow_upsample, channel)
        for count, (utt, wave, seconds) in enumerate(_progress(audio, total, f"{kind} job {job}", job - 1), 1):
            if wanted and utt not in wanted:
                continue
            if isinstance(wave, Exception):
                log.warning("failed to compute features for utterance %s: %s", utt, wave)
                failed.append(f"{utt}: {wave}")
                continue
            try:
                feats = compute(wave, opts, seed=utterance_seed(frame.dither_seed, utt))
            except KaldiliteError as exc:
                log.warning("failed to compute features for utterance %s: %s", utt, exc)
                failed.append(f"{utt}: {exc}")
                continue
            durations[utt] = seconds
            frame_counts[utt] = feats.shape[0]
            if count % 100 == 0:
                log.info("processed %d utterances", count)
            yield utt, feats

    write_matrices(features(), os.path.abspath(ark_path), scp_path)
    with atomic_open(utt2dur_path) as out:
        out.writelines(f"{utt} {durations[utt]:.3f}\n" for utt in sorted(durations))
    with atomic_open(utt2num_frames_path) as out:
        out.writelines(f"{utt} {frame_counts[utt]}\n" for utt in sorted(frame_counts))
    done = len(durations)
    log.info("done %d out of %d utterances (%.1f s of audio in %.1f s)", done, done + len(failed),
             sum(durations.values()), time.perf_counter() - started)
    if done == 0:
        raise KaldiliteError(f"{part_dir}: no utterance gave features ({len(failed)} failed; see the warnings above)")
    return done, len(failed), (failed[0] if failed else None)


def make_features(data_dir, log_dir=None, feat_dir=None, *, kind="mfcc", opts=None, nj=4, channel=-1):
    """steps/make_mfcc.sh (kind='mfcc') or make_fbank.sh (kind='fbank') on a data dir.

    Returns a dict with counts: {'done': n, 'failed': m, 'utterances': total}.
    """
    from kaldilite.io.datadir import DataDir, split_data_dir, validate_data_dir, write_frame_shift
    from kaldilite.parallel import run_jobs
    from kaldilite.utils import atomic_open

    if kind not in KINDS:
        raise InputError(f"unknown feature kind {kind!r}; expected one of {sorted(KINDS)}")
    options_cls = KINDS[kind][0]
    opts = options_cls() if opts is None else opts
    opts.check()
    data_dir = Path(data_dir)
    log_dir = Path(log_dir) if log_dir is not None else data_dir / "log"
    feat_dir = Path(feat_dir) if feat_dir is not None else data_dir / "data"
    if not data_dir.is_dir():
        raise MissingFileError(f"{data_dir}: no such data directory")
    for stale in ("feats.scp", "cmvn.scp", "utt2dur", "utt2num_frames", "frame_shift"):
        # Outputs of an earlier run would no longer match; keep them aside as make_mfcc.sh does.
        if (data_dir / stale).exists():
            (data_dir / ".backup").mkdir(exist_ok=True)
            os.replace(data_dir / stale, data_dir / ".backup" / stale)
    problems = [p for p in validate_data_dir(data_dir, no_feats=True, no_text=True, check_audio=False) if not p.warning]
    if problems:
        raise InputError(f"{problems[0]} ({len(problems)} problem(s) in {data_dir}; "
                         f"'kaldilite data validate {data_dir}' lists them, 'kaldilite data fix' repairs most)")
    data = DataDir.load(data_dir)
    num_speakers = len(data.speakers)
    nj = max(1, min(nj, num_speakers))
    feat_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    name = data_dir.resolve().name
    parts = split_data_dir(data_dir, nj)
    stem = feat_dir.resolve() / f"raw_{kind}_{name}"
    jobs = [(kind, opts, str(part), f"{stem}.{k}.ark", f"{stem}.{k}.scp", str(log_dir / f"utt2dur.{k}"),
             str(log_dir / f"utt2num_frames.{k}"), channel, k) for k, part in enumerate(parts, 1)]
    results = run_jobs(compute_features_job, jobs, log_dir, f"make_{kind}_{name}", nj=nj)

    def join(paths, target):
        lines = []
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                lines.extend(line for line in handle if line.strip())
        lines.sort(key=lambda line: line.split(None, 1)[0])
        with atomic_open(target) as out:
            out.writelines(lines)
        return len(lines)

    join([job[4] for job in jobs], data_dir / "feats.scp")
    join([job[5] for job in jobs], data_dir / "utt2dur")
    join([job[6] for job in jobs], data_dir / "utt2num_frames")
    write_frame_shift(data_dir, opts.frame_opts.frame_shift / 1000.0)  # make_mfcc.sh's DATA/frame_shift
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    total = len(data.utt2spk)
    if done < total:
        # the first reason on the console (a rate or channel mismatch is usually every failure's)
        first = next((r[2] for r in results if r[2]), None)
        log.warning("%s: features for %d of %d utterances (%d failed, e.g. %s; all in %s/make_%s_%s.*.log); "
                    "'kaldilite data fix %s' drops the others", data_dir, done, total, failed, first, log_dir, kind,
                    name, data_dir)
    log.info("succeeded creating %s features for %s (%d utterances)", kind, name, done)
    return {"done": done, "failed": failed, "utterances": total}


def compute_cmvn_stats(data_dir, log_dir=None, cmvn_dir=None):
    """steps/compute_cmvn_stats.sh: per-speaker (spk2utt) stats -> CMVNDIR/cmvn_<name>.ark/.scp, DATA/cmvn.scp.

    Returns the number of speakers written.
    """
    from kaldilite.feat.cmvn import cmvn_stats
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import read_matrices, write_matrices
    from kaldilite.utils import atomic_open

    data_dir = Path(data_dir)
    log_dir = Path(log_dir) if log_dir is not None else data_dir / "log"
    cmvn_dir = Path(cmvn_dir) if cmvn_dir is not None else data_dir / "data"
    data = DataDir.load(data_dir)
    if data.feats_scp is None:
        raise MissingFileError(f"{data_dir / 'feats.scp'}: no features; run make-mfcc on {data_dir} first")
    if data.utt2spk is None:
        raise MissingFileError(f"{data_dir / 'utt2spk'}: no such file; needed to group utterances by speaker")
    log_dir.mkdir(parents=True, exist_ok=True)
    cmvn_dir.mkdir(parents=True, exist_ok=True)
    name = data_dir.resolve().name
    stats, dims = {}, {}
    missing_speaker = []
    for utt, feats in _progress(read_matrices(data_dir / "feats.scp"), len(data.feats_scp), "cmvn stats"):
        speaker = data.utt2spk.get(utt)
        if speaker is None:
            missing_speaker.append(utt)
            continue
        dims.setdefault(feats.shape[1], utt)
        if len(dims) > 1:
            raise InputError(f"{data_dir / 'feats.scp'}: utterances {dims[min(dims)]} and {dims[max(dims)]} have feature "
                             f"dimensions {min(dims)} and {max(dims)}; re-run make-mfcc on the whole data dir")
        stats[speaker] = stats.get(speaker, 0.0) + cmvn_stats(feats)
    if missing_speaker:
        log.warning("%d utterance(s) of feats.scp are not in utt2spk (e.g. %s); run 'kaldilite data fix %s'",
                    len(missing_speaker), missing_speaker[0], data_dir)
    no_feats = sorted(set(data.utt2spk.values()) - set(stats))
    if no_feats:
        log.warning("%d speaker(s) have no features (e.g. %s); they get no CMVN stats", len(no_feats), no_feats[0])
    if not stats:
        raise InputError(f"{data_dir}: no speaker has features; nothing to compute CMVN stats from")
    ark = (cmvn_dir.resolve() / f"cmvn_{name}.ark")
    scp = cmvn_dir / f"cmvn_{name}.scp"
    write_matrices(sorted(stats.items()), ark, scp, dtype=np.float64)
    with open(scp, encoding="utf-8") as handle, atomic_open(data_dir / "cmvn.scp") as out:
        out.write(handle.read())
    with atomic_open(log_dir / f"cmvn_{name}.log") as out:
        out.write(f"# compute_cmvn_stats({data_dir})\n")
        out.write(f"computed CMVN stats for {len(stats)} speakers from {sum(int(s[0, -1]) for s in stats.values())} frames\n")
    log.info("succeeded creating CMVN stats for %s (%d speakers)", name, len(stats))
    return len(stats)
