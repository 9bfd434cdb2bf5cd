"""Reading audio the way Kaldi's feature extractors see it.

Owns: turning a `wav.scp` entry (a file path or an `extended filename` pipe `cmd |`) into one
mono float32 waveform at the configured sample rate, in 16-bit integer scale (values up to
+-32768, as Kaldi's `WaveData` produces them; Kaldi's features and energy floors assume that
scale). Follows Kaldi's `src/feat/wave-reader.cc` (reading, channel choice as in
`compute-mfcc-feats --channel`) and `src/feat/feature-common-inl.h` (a rate mismatch is an error
unless `--allow-downsample` / `--allow-upsample` permits resampling).

Unlike Kaldi we read anything libsndfile reads (WAV 8/16/24/32-bit, float WAV, FLAC, ...);
non-16-bit formats are scaled to the same 16-bit range. A stereo file is an error unless a
channel is named (Kaldi silently takes channel 0, which hides wrongly-exported corpora).
Resampling uses `scipy.signal.resample_poly` with the gcd-reduced ratio (a polyphase
windowed-sinc filter, like Kaldi's `LinearResample` in spirit, not bit-exact).
"""

import io
import logging
import math
import os
import struct
import subprocess

import numpy as np
import soundfile

from kaldilite.errors import AudioError

logger = logging.getLogger(__name__)

# libsndfile scales every PCM format to [-1, 1); multiplying by 2**15 gives back the exact
# int16 values for 16-bit data and the same scale for other bit depths.
_INT16_SCALE = 32768.0

# How much of a failing pipe command's stderr goes into the one-line error.
_STDERR_TAIL_CHARS = 300


def is_pipe(spec):
    """True when `spec` is a Kaldi input pipe: a command whose stdout is the audio, `cmd |`."""
    return isinstance(spec, str) and spec.rstrip().endswith("|")


def _run_pipe(spec):
    """Run the command of a `cmd |` spec and return its stdout bytes; AudioError when it fails."""
    command = spec.rstrip()[:-1].strip()
    if not command:
        raise AudioError(f"{spec!r}: empty command before '|'; write 'COMMAND ARGS |' in wav.scp")
    args = _argv_or_shell(command)
    try:
        proc = subprocess.run(args, shell=isinstance(args, str), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False)
    except OSError as exc:  # run without a shell: the program is missing or cannot be executed
        raise AudioError(f"command '{command}' failed: {exc.strerror}: {exc.filename}; install it or fix the "
                         "command in wav.scp") from None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.decode("utf-8", "replace").split())[-_STDERR_TAIL_CHARS:]
        raise AudioError(
            f"command '{command}' failed with exit status {proc.returncode}"
            f"{': ' + tail if tail else ''}; fix the command in wav.scp"
        )
    if not proc.stdout:
        raise AudioError(f"command '{command}' wrote no audio to stdout; it must write a WAV/FLAC stream")
    return command, proc.stdout


# A pipe command with none of these runs without a shell: the shell's own fork and exec cost ~1.3 ms of
# the ~4 ms of a `sox IN -t wav - speed 0.9 |` (speed-perturbed training data is read this way: 6375
# such commands per pass over the commands recipe's train_aug, two passes), for the same output.
_SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]#~=%{}!\n\t")


def _argv_or_shell(command):
    """The argument list of a plain `program arg ...` command, else the command string for the shell."""
    if any(c in _SHELL_SYNTAX for c in command):
        return command
    return command.split()


def _fix_path_hint(origin):
    """The fix for a wrong path, naming where the path came from when the caller knows it."""
    return f"fix the path in {origin}" if origin else "fix the path"


def _describe_unreadable(name, head, origin):
    """Say why libsndfile could not open a file, from its first bytes."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        return f"{name}: corrupt or truncated WAV header; re-export the file (e.g. sox in.wav -b 16 out.wav)"
    if head[:4] == b"fLaC":
        return f"{name}: corrupt or truncated FLAC stream; re-encode the file"
    return f"{name}: not a recognised audio file (expected WAV or FLAC); {_fix_path_hint(origin)}"


def _open_sound(spec, origin):
    """Return (name for messages, soundfile.SoundFile) for a path or `cmd |` spec; `origin` as in read_audio."""
    if is_pipe(spec):
        command, data = _run_pipe(spec)
        name = f"command '{command}'"
        source = io.BytesIO(data)
        head = data[:12]
    else:
        name = os.fspath(spec)
        if not os.path.exists(name):
            raise AudioError(f"{name}: no such audio file; {_fix_path_hint(origin)} or restore the file")
        if os.path.isdir(name):
            raise AudioError(f"{name}: is a directory, not an audio file; {_fix_path_hint(origin)}")
        size = os.path.getsize(name)
        if size == 0:
            # Only a data dir has an utterance to drop (fix_data_dir); a file named directly is just re-made.
            drop = " or remove the utterance (fix_data_dir)" if origin == "wav.scp" else ""
            raise AudioError(f"{name}: empty file (0 bytes); re-create it{drop}")
        source = name
        try:
            with open(name, "rb") as handle:
                head = handle.read(12)
        except OSError as exc:
            raise AudioError(f"{name}: cannot read ({exc.strerror}); check its permissions") from exc
    try:
        return name, soundfile.SoundFile(source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(_describe_unreadable(name, head, origin)) from exc


def wav_truncation(path):
    """For a RIFF WAV file whose data chunk is shorter on disk than its header says, return
    (bytes declared, bytes present); None otherwise (also for non-WAV files and for streamed
    WAVs whose header leaves the size open). libsndfile silently reads what is there; Kaldi's
    WaveData warns, and so do we: a cut-off recording is usually a failed copy."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(4) != b"RIFF":
                return None
            handle.seek(12)
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
                if chunk_id == b"data":
                    present = size - handle.tell()
                    if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                        return None
                    return chunk_size, present
                handle.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)
    except OSError:
        return None


def read_audio(spec, sample_frequency=None, *, allow_downsample=False, allow_upsample=False, channel=None,
               origin="wav.scp"):
    """Read one waveform as float32 in 16-bit integer scale (like Kaldi's `WaveData`).

    spec: a file path, or a Kaldi input pipe `"sox in.flac -t wav - |"` run through the shell.
    sample_frequency: the rate the caller needs (`--sample-frequency`); None keeps the file's.
    allow_downsample / allow_upsample: permit resampling a higher / lower-rate file to it.
    channel: 0-based channel to take from a multi-channel file; required for those.
    origin: where the path came from, named in the fix of a wrong path ("fix the path in wav.scp");
        the default fits data-dir callers; None (a path given directly, e.g. `decode-online --wav`)
        gives a fix that names no file list.

    Raises AudioError (one line naming the file and the fix) for a missing, empty, corrupt or
    non-audio file, a failing pipe, a file with no samples, several channels without `channel`,
    or a rate mismatch that resampling is not allowed to fix.

    >>> wave = read_audio("fsdd/recordings/0_george_0.wav", 8000)   # doctest: +SKIP
    >>> wave.dtype, float(abs(wave).max()) > 1.0                      # doctest: +SKIP
    (dtype('float32'), True)
    """
    name, sound = _open_sound(spec, origin)
    with sound:
        rate = int(sound.samplerate)
        num_channels = sound.channels
        try:
            data = sound.read(dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name}: audio data cannot be decoded ({exc}); re-export the file") from exc
    if not is_pipe(spec):
        shortfall = wav_truncation(name)
        if shortfall:
            logger.warning("%s: header announces %d bytes of audio but only %d are in the file; truncated file? "
                           "using the %d samples present", name, shortfall[0], shortfall[1], data.shape[0])
    if data.shape[0] == 0:
        raise AudioError(f"{name}: contains no samples (zero-length audio); remove the utterance or re-record it")
    if num_channels > 1 and channel is None:
        raise AudioError(
            f"{name}: has {num_channels} channels but a mono waveform is expected; "
            f"pass --channel=N (0-based) or convert it (e.g. sox in.wav -c 1 out.wav)"
        )
    if channel is not None and not 0 <= channel < num_channels:
        raise AudioError(f"{name}: has {num_channels} channel(s), so --channel={channel} does not exist; use 0..{num_channels - 1}")
    wave = data[:, 0 if channel is None else channel] * np.float32(_INT16_SCALE)

    if sample_frequency is None or rate == int(round(sample_frequency)):
        return np.ascontiguousarray(wave, dtype=np.float32)
    target = int(round(sample_frequency))
    if target < rate and not allow_downsample:
        raise AudioError(
            f"{name}: sample rate {rate} Hz but --sample-frequency={target}; "
            f"resample the data or pass --allow-downsample=true"
        )
    if target > rate and not allow_upsample:
        raise AudioError(
            f"{name}: sample rate {rate} Hz but --sample-frequency={target}; "
            f"resample the data or pass --allow-upsample=true"
        )
    return resample(wave, rate, target)


def resample(wave, from_rate, to_rate):
    """Resample a waveform between integer rates with a polyphase filter (gcd-reduced ratio)."""
    from scipy.signal import resample_poly

    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate == to_rate:
        return np.asarray(wave, dtype=np.float32)
    common = math.gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common
    logger.debug("resampling %d Hz -> %d Hz (up %d, down %d)", from_rate, to_rate, up, down)
    out = resample_poly(np.asarray(wave, dtype=np.float64), up, down)
    return out.astype(np.float32)


def audio_info(spec, origin="wav.scp"):
    """Return (sample_rate, num_channels, num_samples) of a file or pipe without decoding it all
    (`origin` as in read_audio)."""
    name, sound = _open_sound(spec, origin)
    with sound:
        frames = sound.frames
        if frames < 0 or frames > 1 << 62:  # libsndfile's "unknown length" for some pipes
            frames = sound.read(dtype="int16", always_2d=True).shape[0]
        return int(sound.samplerate), sound.channels, int(frames)


def audio_duration(spec, origin="wav.scp"):
    """Duration in seconds of a file or `cmd |` pipe (what Kaldi's utt2dur holds; `origin` as in read_audio)."""
    rate, _, frames = audio_info(spec, origin)
    return frames / float(rate)
