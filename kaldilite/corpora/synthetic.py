"""A synthetic command corpus from espeak-ng, in the Speech Commands layout, for users with no recordings.

Each synthetic "speaker" is an espeak-ng English voice (`en-us`, `en-gb`, `en-gb-scotland`, ...)
with a voice variant (`+m1`..`+m7`, `+f1`..`+f5`: formant and pitch changes), its own speaking
rate (words per minute) and base pitch; each take jitters rate and pitch a little and adds
background noise at a random SNR (white noise shaped by a random one-pole filter, so that takes
differ in colour as well as level). Audio is resampled from espeak-ng's 22.05 kHz to 16 kHz and
padded or cut to exactly one second, centred, like the Speech Commands clips.

The output is the Speech Commands layout (`<word>/<speaker>_nohash_<n>.wav`,
`_background_noise_/`, `validation_list.txt` naming every file of the held-out speakers), so
`prepare_speech_commands` and the recipe treat it like the real corpus. Everything is
deterministic given the seed: the speakers' voices and settings and each take's jitter and noise
come from generators seeded by (seed, speaker) and (seed, speaker, word, take).

The voices speak their own accents, which the lexicon (lang/en's is General American, CMUdict's)
does not list: six of the eight (all but en-us and en-gb-scotland) are non-rhotic and drop the r
of "marvin" (espeak-ng 1.51 --ipa: mˈɑːvɪn, against M AA R V IH N), and en-gb-x-gbcwmd drops the h of
"happy" and "house"; the other words differ in vowel quality only. Recorded speakers of such
accents do the same, and the recipe's lexicon has no variant for them.
"""

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

ESPEAK_RATE = 22050
SAMPLE_RATE = 16000
# English voices of espeak-ng's own (formant) synthesizer; the mbrola ones need extra packages.
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
          "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
MARKER = ".synthesized"


def _espeak():
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise MissingFileError("espeak-ng: not found on PATH; the synthetic corpus needs it "
                               "(apt-get install espeak-ng, or run tools/install_system_deps.sh)")
    return binary


def _rng(*keys):
    digest = hashlib.sha256("\t".join(str(k) for k in keys).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def synthetic_speakers(num_speakers, seed=0):
    """[(speaker id, voice, variant, words per minute, pitch 0-99)], deterministic in the seed.

    Voice/variant pairs are dealt without repetition until all are used; the speaker id is an
    8-hex-digit hash like the dataset's.
    """
    pairs = [(v, var) for var in VARIANTS for v in VOICES]
    order = _rng(seed, "speakers").permutation(len(pairs))
    speakers = []
    for k in range(int(num_speakers)):
        voice, variant = pairs[order[k % len(pairs)]]
        rng = _rng(seed, "speaker", k)
        speaker = hashlib.sha1(f"{seed}-{k}-{voice}-{variant}".encode()).hexdigest()[:8]
        speakers.append((speaker, voice, variant, int(rng.integers(120, 201)), int(rng.integers(25, 76))))
    return speakers


def synthesize_word(word, voice, variant, wpm, pitch, espeak=None):
    """One word from espeak-ng as float64 samples at 22.05 kHz (16-bit scale)."""
    import soundfile

    espeak = espeak or _espeak()
    proc = subprocess.run([espeak, "-v", f"{voice}+{variant}", "-s", str(int(wpm)), "-p", str(int(pitch)),
                           "--stdout", word], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise InputError(f"espeak-ng failed for {word!r} with voice {voice}+{variant}: "
                         f"{proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
    import io

    data, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float64")
    if rate != ESPEAK_RATE:
        log.debug("espeak-ng wrote %d Hz (expected %d)", rate, ESPEAK_RATE)
    return data * 32768.0, rate


def _one_second(wave, rng):
    """Cut or pad (with a random lead-in) to exactly one second at 16 kHz."""
    n = SAMPLE_RATE
    if len(wave) >= n:
        start = (len(wave) - n) // 2
        return wave[start:start + n]
    out = np.zeros(n)
    lead = int(rng.integers(0, n - len(wave) + 1))
    out[lead:lead + len(wave)] = wave
    return out


def _coloured_noise(rng, n):
    """White noise through a one-pole filter with a random pole: from hiss to rumble."""
    from scipy.signal import lfilter

    pole = float(rng.uniform(-0.5, 0.95))
    noise = lfilter([1.0], [1.0, -pole], rng.standard_normal(n))
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def synthesize_corpus(out_dir, words, *, num_speakers=40, takes=2, dev_every=5, snrs=(30.0, 20.0, 15.0, 10.0),
                      num_noise_clips=60, seed=0):
    """Write a Speech Commands-layout corpus of `words` spoken by synthetic speakers; return its Path.

    dev_every: every n-th speaker is held out (validation_list.txt); more than num_speakers (no
    speaker held out: an empty list, which prepare_speech_commands refuses) is an InputError before
    anything is written. takes: recordings per speaker and word. snrs: the SNRs (dB) a take's added
    noise is drawn from. num_noise_clips: 1 s clips of coloured noise in `_background_noise_` (the
    silence class, and augmentation). A marker file records the settings; a second call with the
    same settings returns at once.
    """
    from kaldilite.corpora.augment import write_pcm16
    from kaldilite.io.audio import resample
    from kaldilite.utils.atomic import atomic_open

    words = [w for w in words]
    if not words:
        raise InputError("synthesize_corpus: no words to synthesize")
    if dev_every < 1:
        raise InputError(f"--dev-every {dev_every}: every N-th speaker is held out, so N is 1 or more")
    if dev_every > num_speakers:
        raise InputError(f"--dev-every {dev_every} holds out none of --num-speakers {num_speakers}: "
                         "validation_list.txt, which prepare-speech-commands needs, would be empty; give "
                         f"--dev-every {num_speakers} or less, or more --num-speakers")
    out_dir = Path(out_dir)
    settings = f"words={' '.join(words)} speakers={num_speakers} takes={takes} dev_every={dev_every} " \
               f"snrs={':'.join(f'{s:g}' for s in snrs)} noise={num_noise_clips} seed={seed}\n"
    marker = out_dir / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == settings:
        log.info("%s: already synthesized with these settings", out_dir)
        return out_dir
    espeak = _espeak()
    out_dir.mkdir(parents=True, exist_ok=True)
    dev_files = []
    speakers = synthetic_speakers(num_speakers, seed)
    for k, (speaker, voice, variant, wpm, pitch) in enumerate(speakers):
        is_dev = k % dev_every == dev_every - 1
        for word in words:
            (out_dir / word).mkdir(exist_ok=True)
            for take in range(takes):
                rng = _rng(seed, speaker, word, take)
                raw, rate = synthesize_word(word, voice, variant, wpm * rng.uniform(0.9, 1.1),
                                            min(99, max(0, pitch + rng.integers(-8, 9))), espeak)
                wave = _one_second(resample(raw, rate, SAMPLE_RATE).astype(np.float64), rng)
                wave *= 10 ** rng.uniform(-0.6, 0.0) * 12000.0 / (np.max(np.abs(wave)) + 1e-9)
                snr = float(rng.choice(snrs))
                speech_power = np.mean(wave ** 2)
                wave = wave + _coloured_noise(rng, len(wave)) * np.sqrt(speech_power * 10 ** (-snr / 10))
                name = f"{word}/{speaker}_nohash_{take}.wav"
                write_pcm16(out_dir / name, wave, SAMPLE_RATE)
                if is_dev:
                    dev_files.append(name)
        log.info("speaker %s (%s+%s, %d wpm, pitch %d)%s done", speaker, voice, variant, wpm, pitch,
                 " [dev]" if is_dev else "")
    noise_dir = out_dir / "_background_noise_"
    noise_dir.mkdir(exist_ok=True)
    for k in range(num_noise_clips):
        rng = _rng(seed, "noise", k)
        level = 10 ** rng.uniform(1.0, 3.0)  # 16-bit scale: from near-silence to loud hiss
        write_pcm16(noise_dir / f"{k:04d}.wav", level * _coloured_noise(rng, SAMPLE_RATE), SAMPLE_RATE)
    with atomic_open(out_dir / "validation_list.txt") as handle:
        handle.writelines(f"{name}\n" for name in sorted(dev_files))
    with atomic_open(out_dir / "speakers.txt") as handle:
        handle.write("# speaker voice+variant words_per_minute pitch split\n")
        for k, (speaker, voice, variant, wpm, pitch) in enumerate(speakers):
            split = "dev" if k % dev_every == dev_every - 1 else "train"
            handle.write(f"{speaker} {voice}+{variant} {wpm} {pitch} {split}\n")
    with atomic_open(marker) as handle:
        handle.write(settings)
    return out_dir
