"""Data augmentation of Kaldi data dirs: speed perturbation, additive background noise, reverberation.

Speed perturbation follows Kaldi's `utils/data/perturb_data_dir_speed.sh` (and its `_3way`
wrapper): every utterance and speaker id gets the prefix `sp<factor>-`, `utt2uniq` maps the
copy back to its source utterance, and `wav.scp` plays the audio through `sox ... speed <factor>`
as an input pipe, so no audio is written. sox's `speed` changes tempo and pitch together, and
the copy lasts duration / factor.

Additive noise follows Kaldi's `steps/data/augment_data_dir.py` with background noises
(`--bg-noise-dir`, `--bg-snrs`, `--utt-prefix`, `--random-seed`): each utterance gets one noise
clip (looped when shorter, at a random offset when longer) scaled so that the ratio of the
utterance's mean power to the added noise's mean power is an SNR drawn from the list, the way
Kaldi's `wav-reverberate --additive-signals` scales it. Kaldi builds that mix in a pipe through
its own binary; we have no such binary, so the mixed audio is written once as 16-bit WAV files
under the destination dir. The choice of clip, offset and SNR depends only on the seed and the
utterance id, so a re-run (or a run on a subset) gives the same audio.

Reverberation follows Kaldi's `steps/data/reverberate_data_dir.py` (`--speech-rvb-probability`,
`--pointsource-noise-addition-probability`, `--foreground-snrs`, `--prefix`, `--num-replications`,
`--random-seed`), with RIRs simulated by kaldilite.corpora.rir instead of the RIRS_NOISES download;
the convolution, output shift and power normalization are wav-reverberate's, written to WAV files as
the noise copies are.
"""

import hashlib
import logging
import math
import os
import shlex
import shutil
from pathlib import Path

import numpy as np

from kaldilite.corpora.rir import loop_to_length, reverberate, sample_room_geometries, simulate_room
from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.config import convert_string_to_real, split_fields
from kaldilite.io.datadir import fix_data_dir, read_entries, read_key_values, utt2spk_to_spk2utt, write_key_values

log = logging.getLogger(__name__)

# Files whose keys are utterance ids and whose values carry over unchanged to the copy.
_UTT_VALUE_FILES = ("text", "utt2lang", "utt2gender")
# A noise clip quieter than this mean power (16-bit scale) is digital silence: scaling it to an
# SNR would only amplify quantization steps, so such clips are not used.
_MIN_NOISE_POWER = 1e-2


def format_factor(factor):
    """The factor as Kaldi writes it in ids: 0.9 -> '0.9', 1 -> '1.0'."""
    factor = float(factor)
    if factor <= 0:
        raise InputError(f"speed factor must be positive, not {factor}")
    return repr(factor)


def speed_pipe(rxfilename, factor):
    """A `wav.scp` value that plays `rxfilename` (a path or a `cmd |` pipe) `factor` times faster."""
    factor = format_factor(factor)
    if float(factor) == 1.0:
        # as perturb_data_dir_speed_3way.sh's 1.0 copy (copy_data_dir.sh): the audio as it is, no sox run
        # (which gave the same samples and cost ~3 ms per read: 2125 x 3 reads in the commands recipe)
        return rxfilename
    # -R (repeatable): sox dithers its resampled 16-bit output with fresh random noise on every
    # run otherwise, so the same data dir would give different features (and models) each time.
    if rxfilename.rstrip().endswith("|"):
        return f"{rxfilename.rstrip()} sox -R -t wav - -t wav - speed {factor} |"
    return f"sox -R {shlex.quote(rxfilename)} -t wav - speed {factor} |"


def _require_sox():
    if shutil.which("sox") is None:
        raise MissingFileError("sox: not found on PATH; speed perturbation plays audio through sox "
                               "(install it, e.g. apt-get install sox, or run tools/install_system_deps.sh)")


def _copy_source(src, dest, action, segments_ok=False):
    """SRC's utt2spk and wav.scp, for a step that writes audio copies of its utterances into DEST.

    One-line errors: SRC is not a data dir, SRC has a segments file (each copy is made from a whole
    wav.scp entry; `segments_ok` for a step that copies recordings and their segments, as speed
    perturbation), or DEST is SRC.
    """
    utt2spk = _read_optional(src, "utt2spk")
    wav_scp = _read_optional(src, "wav.scp")
    if utt2spk is None or wav_scp is None:
        raise MissingFileError(f"{src}: needs utt2spk and wav.scp to {action}; is it a data dir?")
    if not segments_ok and (src / "segments").exists():
        raise InputError(f"{src}: has a segments file; to {action}, give a data dir whose wav.scp holds one "
                         "utterance per entry")
    if dest.resolve() == src.resolve():
        raise InputError(f"{dest}: the destination cannot be the source data dir")
    return utt2spk, wav_scp


def _read_optional(src, name):
    path = Path(src) / name
    return read_key_values(path) if path.exists() else None


def _seconds(path, key, text, what):
    """A time in seconds of a data-dir file (segments' start/end, reco2dur, utt2dur) by Kaldi's rule for a
    number (ConvertStringToReal: extract-segments reads segments so; DataDir.load the same), finite and
    >= 0: float() also took '1_0' and other scripts' digits. Else a one-line error at the key's line."""
    try:
        value = convert_string_to_real(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < math.inf:
        line = next((entry.line for entry in read_entries(path) if entry.key == key), "?")
        raise InputError(f"{path}:{line}: {what} of {key} is {text!r}, not a number of seconds >= 0; fix the file "
                         "(or remake the data dir)")
    return value


def perturb_data_dir_speed(factor, src, dest):
    """Write `dest`: a copy of data dir `src` at speed `factor`, as perturb_data_dir_speed.sh.

    Utterance, speaker (and, with `segments`, recording) ids get the prefix `sp<factor>-`;
    segment times and `utt2dur` are divided by the factor; `utt2uniq` points every copy to the
    utterance it came from (so later steps can keep copies of one utterance together).
    Features and CMVN are not copied: they must be recomputed. Returns the destination Path.
    """
    _require_sox()
    src, dest = Path(src), Path(dest)
    factor_text = format_factor(factor)
    prefix = f"sp{factor_text}-"
    utt2spk, wav_scp = _copy_source(src, dest, "speed-perturb", segments_ok=True)
    # the times first: a bad one is refused before DEST is touched
    segments, reco2dur, utt2dur = (_read_optional(src, name) for name in ("segments", "reco2dur", "utt2dur"))
    reco2dur = reco2dur if segments is not None else None  # (without segments, wav.scp's keys are utterances)
    new_segments = {}
    for utt, value in (segments or {}).items():
        fields = split_fields(value)
        if len(fields) != 3:
            raise InputError(f"{src / 'segments'}: line for {utt} needs '<recording> <start> <end>'; fix it")
        start, end = (_seconds(src / "segments", utt, text, what) / float(factor)
                      for text, what in ((fields[1], "start"), (fields[2], "end")))
        new_segments[prefix + utt] = f"{prefix}{fields[0]} {start:.2f} {end:.2f}"
    new_reco2dur = {prefix + k: f"{_seconds(src / 'reco2dur', k, v, 'duration') / float(factor):.3f}"
                    for k, v in (reco2dur or {}).items()}
    new_utt2dur = {prefix + utt: repr(_seconds(src / "utt2dur", utt, v, "duration") / float(factor))
                   for utt, v in (utt2dur or {}).items()}
    dest.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(dest):
        if (dest / name).is_file():
            (dest / name).unlink()

    new_utt2spk = {prefix + utt: prefix + spk for utt, spk in utt2spk.items()}
    write_key_values(dest / "utt2spk", new_utt2spk)
    write_key_values(dest / "spk2utt", {spk: " ".join(utts) for spk, utts in utt2spk_to_spk2utt(new_utt2spk).items()})
    old_uniq = _read_optional(src, "utt2uniq") or {}
    write_key_values(dest / "utt2uniq", {prefix + utt: old_uniq.get(utt, utt) for utt in utt2spk})

    if segments is not None:
        write_key_values(dest / "segments", new_segments)
        for name in ("reco2file_and_channel",):
            table = _read_optional(src, name)
            if table is not None:
                write_key_values(dest / name, {prefix + k: v for k, v in table.items()})
        if reco2dur is not None:
            write_key_values(dest / "reco2dur", new_reco2dur)
    write_key_values(dest / "wav.scp", {prefix + key: speed_pipe(value, factor) for key, value in wav_scp.items()})

    for name in _UTT_VALUE_FILES:
        table = _read_optional(src, name)
        if table is not None:
            write_key_values(dest / name, {prefix + utt: value for utt, value in table.items()})
    if utt2dur is not None:
        write_key_values(dest / "utt2dur", new_utt2dur)
    spk2gender = _read_optional(src, "spk2gender")
    if spk2gender is not None:
        write_key_values(dest / "spk2gender", {prefix + spk: g for spk, g in spk2gender.items()})
    log.info("%s: %d utterances of %s at speed %s", dest, len(new_utt2spk), src, factor_text)
    return dest


def perturb_data_dir_speed_3way(src, dest, factors=(0.9, 1.0, 1.1)):
    """`dest` = the union of `src` at each speed factor, as perturb_data_dir_speed_3way.sh.

    Factor 1.0 is a copy with the `sp1.0-` prefix (Kaldi's convention), so every utterance of
    the result carries its speed in its id. Returns the destination Path.
    """
    from kaldilite.io.datadir import combine_data_dirs

    dest = Path(dest)
    parts = []
    for factor in factors:
        part = dest.parent / f".{dest.name}.sp{format_factor(factor)}"
        perturb_data_dir_speed(factor, src, part)
        parts.append(part)
    try:
        combine_data_dirs(dest, parts)
    finally:
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------
# additive noise


def list_noise_clips(noise):
    """Noise clip rxfilenames from a data dir (its wav.scp), a folder of audio files, or a list file."""
    noise = Path(noise)
    if (noise / "wav.scp").exists():
        return list(read_key_values(noise / "wav.scp").values())
    if noise.is_dir():
        clips = sorted(str(p.resolve()) for p in noise.iterdir() if p.suffix.lower() in (".wav", ".flac"))
    elif noise.is_file():
        clips = [line.strip() for line in noise.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise MissingFileError(f"{noise}: no such noise dir or list; give a data dir, a folder of wavs or a list file")
    if not clips:
        raise InputError(f"{noise}: holds no .wav/.flac noise clips")
    return clips


def _audible_noise_clips(noise, rate=None):
    """[(rxfilename, waveform)] of the clips of `noise` (list_noise_clips) that are not digital silence,
    read at `rate` (resampled) if given, else at their own rate; an error if none is left."""
    from kaldilite.io.audio import read_audio

    clips = [(spec, read_audio(spec) if rate is None else read_audio(spec, rate, allow_downsample=True,
                                                                      allow_upsample=True))
             for spec in list_noise_clips(noise)]
    if not clips:
        raise InputError(f"{noise}: no noise clips")
    usable = [(spec, wave) for spec, wave in clips if float(np.mean(np.asarray(wave, np.float64) ** 2)) > _MIN_NOISE_POWER]
    if len(usable) < len(clips):
        log.info("%s: %d of %d noise clips are digital silence and are not used", noise, len(clips) - len(usable), len(clips))
    if not usable:
        raise InputError(f"{noise}: every noise clip is silent; give clips with audible noise")
    return usable


def _utterance_rng(seed, utt):
    """A generator seeded by (seed, utterance id): the draw for one utterance never depends on others."""
    digest = hashlib.sha256(f"{seed}\t{utt}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def mix_at_snr(speech, noise, snr_db, offset=0):
    """Return (speech + scaled noise, added noise) with mean-power ratio `snr_db` dB.

    The noise is looped to the speech's length starting at sample `offset`. Both signals are
    float arrays in the same scale; the scale factor follows wav-reverberate's additive signals.
    """
    speech = np.asarray(speech, dtype=np.float64)
    segment = loop_to_length(noise, len(speech), offset)
    added = _snr_scale(speech, segment, snr_db) * segment
    return speech + added, added


def _snr_scale(speech, segment, snr_db):
    """The factor that makes mean power(speech) / mean power(factor * segment) `snr_db` dB."""
    speech_power = float(np.mean(speech ** 2))
    noise_power = float(np.mean(segment ** 2))
    if noise_power <= 0.0:
        raise InputError("mix_at_snr: the noise is all zeros; choose another clip")
    return np.sqrt(speech_power / noise_power * 10.0 ** (-snr_db / 10.0))


def add_noise_data_dir(src, dest, noise, snrs=(15.0, 10.0, 5.0, 0.0), utt_prefix="noise", random_seed=0,
                       sample_frequency=None, pad_range=None, pad_probability=0.5, frame_shift=10.0):
    """Write `dest`: data dir `src` with background noise added to every utterance.

    noise: a data dir, folder or list of noise clips (see list_noise_clips).
    snrs: the SNRs in dB drawn from, uniformly, one per utterance.
    Utterance and speaker ids get the prefix `<utt_prefix>-` (augment_data_dir.py with
    --modify-spk-id true, which keeps utt2spk sortable after combining with the source);
    `utt2uniq` maps each copy to its source utterance; the chosen clip, offset and SNR of each
    utterance are listed in `dest/utt2noise`. Audio goes to `dest/wav/<utt>.wav` (16-bit PCM,
    clipped). Returns the destination Path.

    pad_range (min, max) seconds: a pause of background noise before and after the word, as a live user
    leaves one (`--pad-range`; None: no padding). Each side is padded with probability `pad_probability`,
    by a length drawn uniformly from the range and rounded to whole frame shifts (`frame_shift`, ms:
    Kaldi's --frame-shift, that of the features the copies will get; default Kaldi's 10), so the word's
    frames are the unpadded copy's. The noise runs on through the pauses at the scale the unpadded copy
    has (the SNR against the unpadded speech), so the word's samples are exactly that copy's
    (`pad_noise`). The draws for the pauses come after the clip, offset and SNR, so those are the
    unpadded copy's too. `dest/utt2pad` lists each utterance's pauses ("<before> <after>") as frames
    written as seconds of `frame_shift` frames (a frame is the extractor's shift at the audio's rate: 220
    samples at 22.05 kHz for 10 ms), from which train-nnet2 extends the unpadded copy's alignment
    (kaldilite.nnet.train.padded_alignments, which counts them in frames of the features' DATA/frame_shift
    and refuses pauses that are not whole frames of it); utt2dur is the padded length.
    """
    from kaldilite.io.audio import read_audio

    src, dest = Path(src), Path(dest)
    utt2spk, wav_scp = _copy_source(src, dest, "add noise")
    if pad_range is not None:
        pad_range = tuple(float(x) for x in pad_range)
        if len(pad_range) != 2 or not 0.0 <= pad_range[0] <= pad_range[1] < float("inf"):
            raise InputError(f"--pad-range {pad_range}: needs min:max seconds with 0 <= min <= max, e.g. 0.2:1.5")
        if not 0.0 <= pad_probability <= 1.0:
            raise InputError(f"--pad-probability {pad_probability}: must be a probability in [0, 1]")
        if not 0.0 < float(frame_shift) < float("inf"):
            raise InputError(f"--frame-shift {frame_shift}: must be the features' frame shift in ms (e.g. 10)")
    snrs = [float(s) for s in snrs]
    if not snrs:
        raise InputError("add_noise_data_dir: give at least one SNR")
    prefix = f"{utt_prefix}-" if utt_prefix else ""
    if not prefix:
        raise InputError("add_noise_data_dir: --utt-prefix must not be empty (the copies need their own ids)")

    rate = None if sample_frequency is None else int(sample_frequency)
    usable = _audible_noise_clips(noise)

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "wav").mkdir(parents=True)
    resampled = {}

    new_wav, utt2noise, utt2pad, utt2dur = {}, {}, {}, {}
    for utt in sorted(wav_scp):
        if utt not in utt2spk:
            continue
        speech = read_audio(wav_scp[utt], rate, allow_downsample=True, allow_upsample=True)
        speech_rate = rate if rate is not None else _rate_of(wav_scp[utt])
        rng = _utterance_rng(random_seed, utt)
        index = int(rng.integers(len(usable)))
        spec, noise_wave = usable[index]
        key = (index, speech_rate)
        if key not in resampled:
            noise_rate = _rate_of(spec)
            from kaldilite.io.audio import resample
            resampled[key] = resample(noise_wave, noise_rate, speech_rate) if noise_rate != speech_rate else noise_wave
        noise_wave = resampled[key]
        snr = snrs[int(rng.integers(len(snrs)))]
        offset = int(rng.integers(len(noise_wave)))
        if float(np.mean(np.asarray(speech, np.float64) ** 2)) <= 0.0:
            mixed = np.asarray(speech, np.float64)
            log.warning("%s: utterance %s is all zeros; copied without noise", src, utt)
            pads = (0, 0)
        else:
            pads = (0, 0) if pad_range is None else _draw_pads(rng, pad_range, pad_probability, speech_rate,
                                                               frame_shift)
            mixed = pad_noise(speech, noise_wave, snr, offset, *pads)
        new_wav[prefix + utt] = write_pcm16(dest / "wav" / f"{prefix}{utt}.wav", mixed, speech_rate)
        utt2noise[prefix + utt] = f"{spec} {offset} {snr:g}"
        if pad_range is not None:
            frames = [pad // _frame_shift_samples(speech_rate, frame_shift) for pad in pads]
            utt2pad[prefix + utt] = " ".join(_frames_as_seconds(n, frame_shift) for n in frames)
            utt2dur[prefix + utt] = f"{len(mixed) / speech_rate:.3f}"

    write_key_values(dest / "wav.scp", new_wav)
    write_key_values(dest / "utt2noise", utt2noise)
    _write_prefixed_tables(src, dest, {utt: utt2spk[utt] for utt in wav_scp if utt in utt2spk}, [prefix])
    if pad_range is not None:
        write_key_values(dest / "utt2pad", utt2pad)
        write_key_values(dest / "utt2dur", utt2dur)  # the padded lengths (the source's utt2dur is not theirs)
    fix_data_dir(dest)
    log.info("%s: %d utterances of %s with noise at SNR %s dB%s", dest, len(new_wav), src,
             ":".join(f"{s:g}" for s in snrs),
             "" if pad_range is None else f", pauses of {pad_range[0]:g}-{pad_range[1]:g} s before/after "
             f"(each with probability {pad_probability:g}; whole {float(frame_shift):g} ms frames)")
    return dest


# The pauses are whole frame shifts of the features the copies will get (--frame-shift, ms), so that
# frame t of the unpadded copy is frame t + before of the padded one, on the same samples. utt2pad counts
# them in frames, written as seconds of those frames (n x shift: exact seconds at rates whose shift is whole
# samples; 10 ms frames as two decimals, as before the option).


def _frame_shift_samples(rate, frame_shift=10.0):
    """The frame shift (ms) in samples at `rate` as the feature extractor counts it (Kaldi's
    FrameExtractionOptions::WindowShift(), truncated: 220 at 22.05 kHz for 10 ms)."""
    return int(rate * 0.001 * frame_shift)


def _frames_as_seconds(frames, frame_shift):
    """`frames` pauses of `frame_shift` ms as utt2pad writes them: the shortest decimals, at least two."""
    whole, fraction = f"{frames * float(frame_shift) / 1000.0:.6f}".rstrip("0").split(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _draw_pads(rng, pad_range, probability, rate, frame_shift=10.0):
    """(before, after) pause lengths in samples for one utterance (add_noise_data_dir's pad_range)."""
    quantum = _frame_shift_samples(rate, frame_shift)
    pads = []
    for _ in range(2):
        use = rng.random() < probability
        seconds = rng.uniform(pad_range[0], pad_range[1])
        pads.append(int(round(seconds * rate / quantum)) * quantum if use else 0)
    return tuple(pads)


def pad_noise(speech, noise, snr_db, offset, before, after):
    """`speech` with `before` and `after` samples of pause, and the noise over all of it.

    Under the speech, the noise (looped, from sample `offset`) and its scale are mix_at_snr's, so
    those samples equal mix_at_snr(speech, noise, snr_db, offset)[0]; the pauses hold the same scaled
    noise running on before and after it (no speech). before = after = 0 is mix_at_snr.
    """
    speech = np.asarray(speech, dtype=np.float64)
    if before == 0 and after == 0:
        return mix_at_snr(speech, noise, snr_db, offset)[0]
    # the noise from (offset - before): its samples under the speech are mix_at_snr's segment
    out = loop_to_length(noise, before + len(speech) + after, (offset - before) % len(noise))
    words = slice(before, before + len(speech))
    out *= _snr_scale(speech, out[words], snr_db)
    out[words] = speech + out[words]
    return out


def write_pcm16(path, wave, rate):
    """Write `wave` (int16 scale) rounded and clipped as a 16-bit PCM WAV file, atomically (a crash
    leaves no truncated wav behind a wav.scp line); returns the absolute path as str.

    The corpora layer's one wav writer (augmentation, the synthetic corpus)."""
    import soundfile

    from kaldilite.utils.atomic import atomic_path

    path = Path(path).resolve()
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), np.clip(np.round(wave), -32768, 32767).astype(np.int16), rate, subtype="PCM_16",
                        format="WAV")
    return str(path)


def _rate_of(spec):
    from kaldilite.io.audio import audio_info

    return audio_info(spec)[0]


# ---------------------------------------------------------------------------------------------
# reverberation


def reverberate_data_dir(src, dest, num_rirs=100, rt60_range=(0.2, 0.8), speech_rvb_probability=1.0,
                         pointsource_noise_addition_probability=0.0, noise=None, foreground_snrs=(20.0, 15.0, 10.0, 5.0),
                         prefix="rev", num_replications=1, random_seed=0, sample_frequency=16000, nj=1):
    """Write `dest`: reverberated copies of data dir `src`, as steps/data/reverberate_data_dir.py.

    The RIRs are `num_rirs` simulated rooms (kaldilite.corpora.rir.sample_room_rirs, RT60 uniform in
    `rt60_range`, seeded by `random_seed`). Each utterance of replication k gets the ids
    `<prefix><k>-<utt>` and `<prefix><k>-<spk>`, one room drawn by (seed, id), its speech RIR with
    probability `speech_rvb_probability` (else the copy is dry) and, with probability
    `pointsource_noise_addition_probability`, one clip of `noise` (a data dir, folder or list, as
    add_noise_data_dir's) played from another source position of the same room at an SNR drawn from
    `foreground_snrs`. The copy keeps the source's length and timing (the output is shifted by the RIR's
    peak), so the source's alignment is the copy's (train-nnet2 copies it through `utt2uniq`, as
    steps/copy_ali_dir.sh). Audio goes to `dest/wav/<id>.wav` (16-bit PCM at `sample_frequency`);
    `dest/utt2rir` lists each copy's room, RT60 and noise; `dest/rooms.txt` every room.
    `nj` jobs (logs in `dest/log`) simulate the rooms and then reverberate the utterances, each a
    share of them; every draw depends on the seed and an id only, so the output is the same for any `nj`.
    """
    from kaldilite.parallel import run_jobs

    src, dest = Path(src), Path(dest)
    utt2spk, wav_scp = _copy_source(src, dest, "reverberate")
    for name, p in (("--speech-rvb-probability", speech_rvb_probability),
                    ("--pointsource-noise-addition-probability", pointsource_noise_addition_probability)):
        if not 0.0 <= p <= 1.0:
            raise InputError(f"{name} {p}: must be a probability in [0, 1]")
    if not prefix:
        raise InputError("reverberate_data_dir: --prefix must not be empty (the copies need their own ids)")
    if num_replications < 1:
        raise InputError(f"--num-replications must be at least 1, not {num_replications}")
    if nj < 1:
        raise InputError(f"--nj must be at least 1, not {nj}")
    snrs = [float(s) for s in foreground_snrs]
    rate = int(sample_frequency)
    noises = []
    if pointsource_noise_addition_probability > 0:
        if noise is None:
            raise InputError("reverberate_data_dir: --pointsource-noise-addition-probability > 0 needs --noise-dir")
        if not snrs:
            raise InputError("reverberate_data_dir: give at least one foreground SNR")
        noises = [(spec, np.asarray(wave, np.float64)) for spec, wave in _audible_noise_clips(noise, rate)]

    geometries = sample_room_geometries(num_rirs, rt60_range=rt60_range, seed=random_seed)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "wav").mkdir(parents=True)
    log_dir = dest / "log"
    room_shares = [geometries[k::nj] for k in range(min(nj, len(geometries)))]
    simulated = run_jobs(_simulate_rooms_job, [(share, rate) for share in room_shares], log_dir, "simulate_rooms",
                         nj=nj)
    rooms = [None] * len(geometries)
    for k, share in enumerate(simulated):
        rooms[k::len(room_shares)] = share
    log.info("%d simulated rooms (RT60 %g-%g s) at %d Hz, seed %d", num_rirs, float(rt60_range[0]),
             float(rt60_range[1]), rate, random_seed)
    with open(dest / "rooms.txt", "w", encoding="utf-8") as handle:
        for index, room in enumerate(rooms):
            handle.write(f"room{index} {room.describe()}\n")

    utts = [utt for utt in sorted(wav_scp) if utt in utt2spk]
    prefixes = [f"{prefix}{rep}-" for rep in range(1, num_replications + 1)]
    settings = dict(speech_rvb_probability=speech_rvb_probability,
                    pointsource_noise_addition_probability=pointsource_noise_addition_probability, snrs=snrs,
                    random_seed=random_seed, rate=rate)
    shares = [utts[k * len(utts) // nj:(k + 1) * len(utts) // nj] for k in range(nj)]
    outputs = run_jobs(_reverberate_job, [([(u, wav_scp[u]) for u in share], str(src), str(dest), prefixes, rooms,
                                           noises, settings) for share in shares if share], log_dir, "reverberate",
                       nj=nj)
    new_wav, utt2rir = {}, {}
    for job_wav, job_rir in outputs:
        new_wav.update(job_wav)
        utt2rir.update(job_rir)

    write_key_values(dest / "wav.scp", new_wav)
    write_key_values(dest / "utt2rir", utt2rir)
    _write_prefixed_tables(src, dest, utt2spk, prefixes)
    fix_data_dir(dest)
    log.info("%s: %d reverberated copies of %s's %d utterances (%d rooms, RT60 %g-%g s, speech RIR p=%g, "
             "point-source noise p=%g)", dest, len(new_wav), src, len(utt2spk), len(rooms), rt60_range[0],
             rt60_range[1], speech_rvb_probability, pointsource_noise_addition_probability)
    return dest


def _simulate_rooms_job(geometries, rate):
    """The Rooms (RIRs) of a share of reverberate_data_dir's room geometries."""
    return [simulate_room(g, rate) for g in geometries]


def _reverberate_job(utts, src, dest, prefixes, rooms, noises, settings):
    """reverberate_data_dir's copies of the utterances `utts` ([(utt, wav.scp value)]): writes their wavs,
    returns ({copy id: wav path}, {copy id: utt2rir line})."""
    from kaldilite.io.audio import read_audio

    rate, snrs = settings["rate"], settings["snrs"]
    new_wav, utt2rir = {}, {}
    for utt, spec in utts:
        speech = np.asarray(read_audio(spec, rate, allow_downsample=True, allow_upsample=True), np.float64)
        silent = float(np.mean(speech ** 2)) <= 0.0
        if silent:  # once per utterance, not once per replication
            log.warning("%s: utterance %s is all zeros; copied as is", src, utt)
        for rep_prefix in prefixes:  # each copy's draws depend on its own id only
            new_id = rep_prefix + utt
            rng = _utterance_rng(settings["random_seed"], new_id)
            room_index = int(rng.integers(len(rooms)))
            room = rooms[room_index]
            wet = rng.random() < settings["speech_rvb_probability"]
            add_noise = rng.random() < settings["pointsource_noise_addition_probability"]
            clip, snr, offset = None, None, 0
            if add_noise:
                clip = noises[int(rng.integers(len(noises)))]
                snr = snrs[int(rng.integers(len(snrs)))]
                offset = int(rng.integers(len(clip[1])))
            # a dry copy still goes through `reverberate` with a unit impulse, so noise and output
            # normalization are the same code path
            rir = room.rirs[0] if wet else np.array([1.0])
            if silent:
                out = speech
            else:
                noise_rir = room.rirs[1 % len(room.rirs)] if wet else np.array([1.0])
                out = reverberate(speech, rir, rate, noise=None if clip is None else clip[1], noise_rir=noise_rir,
                                  snr_db=snr, noise_offset=offset)
            new_wav[new_id] = write_pcm16(Path(dest) / "wav" / f"{new_id}.wav", out, rate)
            noise_text = "none" if clip is None else f"{clip[0]} {offset} {snr:g}"
            utt2rir[new_id] = (f"room{room_index} rt60={room.rt60:.3f}" if wet else "dry") + f" noise={noise_text}"
    return new_wav, utt2rir


def _write_prefixed_tables(src, dest, utt2spk, prefixes):
    """utt2spk, spk2utt, utt2uniq and the utterance/speaker value tables of `src` under each id prefix."""
    new_utt2spk, uniq, values = {}, {}, {name: {} for name in _UTT_VALUE_FILES + ("utt2dur",)}
    old_uniq = _read_optional(src, "utt2uniq") or {}
    tables = {name: _read_optional(src, name) for name in values}
    spk2gender = _read_optional(src, "spk2gender")
    new_gender = {}
    for prefix in prefixes:
        for utt, spk in utt2spk.items():
            new_utt2spk[prefix + utt] = prefix + spk
            uniq[prefix + utt] = old_uniq.get(utt, utt)
            for name, table in tables.items():
                if table is not None and utt in table:
                    values[name][prefix + utt] = table[utt]
        if spk2gender is not None:
            new_gender.update({prefix + spk: g for spk, g in spk2gender.items()})
    write_key_values(dest / "utt2spk", new_utt2spk)
    write_key_values(dest / "spk2utt", {spk: " ".join(utts) for spk, utts in utt2spk_to_spk2utt(new_utt2spk).items()})
    write_key_values(dest / "utt2uniq", uniq)
    for name, table in values.items():
        if tables[name] is not None:
            write_key_values(dest / name, table)
    if spk2gender is not None:
        write_key_values(dest / "spk2gender", new_gender)
