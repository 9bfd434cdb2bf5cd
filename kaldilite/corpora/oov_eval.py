"""Out-of-vocabulary evaluation sets for a command recognizer: words never in its grammar.

The Speech Commands dev split has few non-command utterances (9 in the shared subset), too
few to measure a 5% false-accept rate. These sets add real speech of other words, from
speakers no model has seen, as Kaldi data dirs whose transcripts are the spoken words (none
is a command, so the scorer counts every utterance as `_unknown_`):

- `prepare_fsdd_oov`: the Free Spoken Digit Dataset's digits (zero..nine) from its six
  speakers, resampled to the recognizer's rate by a `sox ... -r RATE` pipe in wav.scp. A
  documented channel mismatch: FSDD is 8 kHz audio, so the resampled signal has nothing above
  4 kHz, and it is read speech from a different microphone than Speech Commands' browser
  recordings. Both make the set harder to match for any model, which can raise or lower the
  false-accept rate; report it beside the dev fillers, never mixed with them.

  FSDD clips are trimmed to the word (~0.5 s) while Speech Commands clips are 1 s with the word
  inside: with `pad_to=1.0` each clip is centred in 1 s by sox's `pad` (digital silence; the
  feature extractor's dither makes it low-level noise), so the OOV set and dev differ in the words,
  not in clip length (a length-dependent score such as llr_total otherwise tells them apart by
  duration alone).

Ids: speaker `fsdd_<speaker>`, utterance `fsdd_<speaker>-<digit word>-<take:02d>` (sorted by
utterance = grouped by speaker, as Kaldi requires).
"""

import logging
import shlex
from pathlib import Path

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


def prepare_fsdd_oov(fsdd_dir, out_dir, takes=5, sample_frequency=16000, speakers=None, pad_to=0.0, digits=None):
    """Write a data dir of FSDD digits as OOV words: `takes` lowest takes per speaker and digit.

    `speakers` / `digits` (optional) keep only those FSDD speakers / digits (0-9); `pad_to` > 0
    centres each clip shorter than that many seconds in silence of that length. The one way FSDD
    clips are made to look like Speech Commands' (the stage-3 benchmark's new words use it too).
    Returns the `DataDir`.
    """
    import soundfile

    from kaldilite.corpora.augment import _require_sox
    from kaldilite.corpora.fsdd import DIGIT_WORDS, list_recordings
    from kaldilite.io.datadir import DataDir

    if takes < 1:
        raise InputError(f"prepare_fsdd_oov: takes must be >= 1, got {takes}")
    _require_sox()
    wav_scp, text, utt2spk = {}, {}, {}
    for speaker, digit, take, path in list_recordings(fsdd_dir):
        if take >= takes or (speakers is not None and speaker not in speakers) or (
                digits is not None and digit not in digits):
            continue
        spk = f"fsdd_{speaker}"
        utt = f"{spk}-{DIGIT_WORDS[digit]}-{take:02d}"
        pad = ""
        if pad_to > 0:
            missing = max(0.0, pad_to - soundfile.info(str(path)).duration)
            pad = f" pad {missing / 2:.4f} {missing - missing / 2:.4f}" if missing > 0 else ""
        # -R (repeatable): sox dithers the resampled 16-bit output with fresh random noise on every
        # run otherwise, so the padded silence -- and the decodes of this set -- changed between runs
        wav_scp[utt] = f"sox -R {shlex.quote(str(path))} -r {int(sample_frequency)} -t wav -{pad} |"
        text[utt] = DIGIT_WORDS[digit]
        utt2spk[utt] = spk
    if not wav_scp:
        raise InputError(f"{fsdd_dir}: no FSDD recordings left for the OOV set (takes < {takes}, "
                         f"speakers {speakers or 'all'}, digits {digits or 'all'})")
    data = DataDir(wav_scp=dict(sorted(wav_scp.items())), text=dict(sorted(text.items())),
                   utt2spk=dict(sorted(utt2spk.items())))
    data.save(out_dir)
    log.info("%s: %d OOV utterances (FSDD digits at %d Hz), %d speakers", out_dir, len(wav_scp),
             sample_frequency, len(set(utt2spk.values())))
    return DataDir.load(out_dir)


def prepare_synthetic_oov(words, out_dir, num_speakers=10, takes=1, seed=1):
    """Write a data dir of `words` spoken by `num_speakers` espeak-ng voices (audio under OUT_DIR/audio).

    The voices are `synthetic_speakers(num_speakers, seed)`; seed 1 by default, so they are not
    the voices of a synthetic training corpus (seed 0). Returns the `DataDir`.
    """
    from kaldilite.corpora.synthetic import synthesize_corpus
    from kaldilite.io.datadir import DataDir

    words = [w for w in words]
    if not words:
        raise InputError("prepare_synthetic_oov: no words given")
    out_dir = Path(out_dir)
    audio = synthesize_corpus(out_dir / "audio", words, num_speakers=num_speakers, takes=takes, dev_every=1,
                              num_noise_clips=0, seed=seed)
    wav_scp, text, utt2spk = {}, {}, {}
    for word in words:
        for path in sorted((audio / word).glob("*_nohash_*.wav")):
            speaker, _, take = path.stem.partition("_nohash_")
            spk = f"synth_{speaker}"
            utt = f"{spk}-{word}-{int(take):02d}"
            wav_scp[utt], text[utt], utt2spk[utt] = str(path.resolve()), word, spk
    data = DataDir(wav_scp=dict(sorted(wav_scp.items())), text=dict(sorted(text.items())),
                   utt2spk=dict(sorted(utt2spk.items())))
    data.save(out_dir)
    log.info("%s: %d synthetic OOV utterances of %d words, %d voices", out_dir, len(wav_scp), len(words),
             len(set(utt2spk.values())))
    return DataDir.load(out_dir)
