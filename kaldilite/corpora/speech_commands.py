"""Speech Commands (Warden 2018) -> Kaldi data directories for command recognition with rejection.

Layout (the dataset's own, v0.01/v0.02 and the shared subset alike): `<word>/<speaker>_nohash_<n>.wav`
(16 kHz, 1 s), `_background_noise_/*.wav`, and `validation_list.txt` / `testing_list.txt`
naming the dev and test files by relative path. Splits as the dataset defines them
(arXiv:1804.03209, section 5): a file in validation_list.txt is dev, in testing_list.txt test,
everything else train; both lists are speaker-disjoint from train.

Kaldi-side choices:
- utterance id `<speaker>-<word>-<n:02d>`, speaker id the dataset's hashed speaker, so sorting
  by utterance groups speakers (Kaldi's requirement);
- transcript: the word itself; a word the lexicon lacks becomes `<UNK>` (how Kaldi recipes
  map training OOVs onto the spoken-noise word), a word never lost;
- background noise is the 12-class task's "silence" class: the clips (or, for the full
  dataset's minute-long files, 1 s chunks played through `sox ... trim` pipes) become
  utterances with the transcript `!SIL` (the silence word of `lang/en`, as Kaldi would
  transcribe them), grouped into pseudo-speakers `noiseNN` of `NOISE_PER_SPEAKER` clips so that
  per-speaker CMVN sees several clips. The clips are split between train and dev (every
  `dev_noise_every`-th clip is dev) so no clip is both trained on and scored; the noise data
  dirs (`noise_train`, `noise_dev`) hold the same split, for augmentation;
- the recordings of a speaker, word and take that are byte-identical to an earlier take (the
  dataset has such repeats) are dropped, so they do not count twice;
- `heldout_speakers` (a file of training speaker ids, noise pseudo-speakers too) moves those
  speakers' utterances from `train` to a `heldout` part, and their noise clips out of
  `noise_train`: a held-out-speaker slice that no model trained from `train` sees
  (bench/make_slice.py builds the commands recipe's tuning slice so).

The shared subset's words are the ten commands and ten filler words; the full dataset's other
words (digits, `backward`, `learn`, ...) become fillers/unknowns just the same.
"""

import hashlib
import logging
import re
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
NOISE_DIR = "_background_noise_"
SILENCE_WORD = "!SIL"
NOISE_PER_SPEAKER = 10
_NAME = re.compile(r"^([0-9A-Za-z]+)_nohash_([0-9]+)\.wav$")


def is_noise_speaker(speaker):
    """True for a background-noise pseudo-speaker id (`noiseNN`), False for a recorded speaker."""
    return re.fullmatch(r"noise[0-9]+", speaker) is not None


def is_speech_commands(path):
    """True when `path` looks like a Speech Commands root (word folders of `*_nohash_*.wav`)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(d.is_dir() and not d.name.startswith("_") and any(d.glob("*_nohash_*.wav")) for d in path.iterdir())


def list_recordings(corpus_dir):
    """All word recordings as (word, speaker, index, path), sorted; InputError when there are none."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise MissingFileError(f"{corpus_dir}: no such folder; give the Speech Commands root (word folders inside)")
    found = []
    for word_dir in sorted(p for p in corpus_dir.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for path in sorted(word_dir.glob("*.wav")):
            match = _NAME.match(path.name)
            if match is None:
                log.warning("%s: not a Speech Commands file name (<speaker>_nohash_<n>.wav); skipped", path)
                continue
            found.append((word_dir.name, match.group(1), int(match.group(2)), path.resolve()))
    if not found:
        raise InputError(f"{corpus_dir}: no <word>/<speaker>_nohash_<n>.wav recordings found; "
                         "is this a Speech Commands folder?")
    return found


def _read_list(path):
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def _noise_utterances(corpus_dir, chunk_seconds=1.0):
    """(clip id, rxfilename) for each noise clip; files longer than 1.5 chunks are cut into chunks."""
    from kaldilite.io.audio import audio_info

    noise_dir = Path(corpus_dir) / NOISE_DIR
    if not noise_dir.is_dir():
        return []
    result = []
    for path in sorted(noise_dir.glob("*.wav")):
        rate, _, frames = audio_info(str(path), origin=None)  # a corpus file, not a wav.scp entry
        seconds = frames / float(rate)
        stem = re.sub(r"[^0-9A-Za-z]+", "_", path.stem)
        if seconds <= 1.5 * chunk_seconds:
            result.append((stem, str(path.resolve())))
            continue
        for k in range(int(seconds // chunk_seconds)):
            start = k * chunk_seconds
            result.append((f"{stem}_{k:03d}", f"sox {path.resolve()} -t wav - trim {start:g} {chunk_seconds:g} |"))
    return result


def split_noise_clips(corpus_dir, dev_noise_every=5):
    """{"train": [...], "dev": [...]}: the corpus's noise clips (clip id, rxfilename), every
    `dev_noise_every`-th (in sorted order) dev, the rest train: the split of `noise_dev` / `noise_train`
    (and of the silence utterances) that prepare_speech_commands writes. A dev clip is never trained on."""
    parts = {"train": [], "dev": []}
    for k, item in enumerate(_noise_utterances(corpus_dir)):
        parts["dev" if k % dev_noise_every == dev_noise_every - 1 else "train"].append(item)
    return parts


def _file_digest(path):
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def prepare_speech_commands(corpus_dir, out_dir, *, lexicon_words=None, dev_noise_every=5, speakers_per_part=None,
                            dedup=True, silence=True, heldout_speakers=None):
    """Write Kaldi data dirs `train`, `dev` (and `test` when testing_list.txt exists) under `out_dir`.

    lexicon_words: words the lexicon knows; other words are transcribed `<UNK>` (None: keep all).
    dev_noise_every: every n-th noise clip is a dev (and test) silence utterance, the rest train.
    speakers_per_part: keep only this many speakers per part (the first in sorted order that
    have a filler recording, then the rest), for quick runs and CI; None keeps all.
    silence: add the noise clips as `!SIL` utterances. Also writes `noise_train` / `noise_dev`
    (the noise clips as data dirs, for add-noise-data-dir).
    heldout_speakers: a file of training speaker ids (one per line; `noiseNN` names a noise
    pseudo-speaker) written to the part `heldout` instead of `train` (their clips are not in
    `noise_train` either); an id that is not a training speaker is an InputError at its line,
    before anything is written. Returns {part: DataDir}.
    """
    from kaldilite.io.datadir import DataDir

    corpus_dir = Path(corpus_dir)
    out_dir = Path(out_dir)
    recordings = list_recordings(corpus_dir)
    dev_list = _read_list(corpus_dir / "validation_list.txt")
    test_list = _read_list(corpus_dir / "testing_list.txt")
    if not dev_list:
        raise InputError(f"{corpus_dir / 'validation_list.txt'}: missing or empty; the dev split is defined by it "
                         "(one <word>/<file>.wav per line)")
    parts = {"train": [], "dev": []}
    if test_list:
        parts["test"] = []
    seen_digests = {}
    duplicates = 0
    for word, speaker, index, path in recordings:
        rel = f"{word}/{path.name}"
        part = "dev" if rel in dev_list else "test" if rel in test_list else "train"
        if dedup:
            digest = _file_digest(path)
            key = (speaker, word, digest)
            if key in seen_digests:
                duplicates += 1
                continue
            seen_digests[key] = rel
        parts[part].append((word, speaker, index, path))
    if duplicates:
        log.info("%s: dropped %d recordings identical to an earlier take of the same speaker and word", corpus_dir,
                 duplicates)

    unknown_words = set()
    noise_parts = split_noise_clips(corpus_dir, dev_noise_every) if silence else {"train": [], "dev": []}
    if "test" in parts:
        # the test part reuses the dev clips: noise clips carry no speaker to keep apart
        noise_parts["test"] = noise_parts["dev"]

    tables = {}  # part -> (wav_scp, text, utt2spk, number of noise clips)
    for part, items in parts.items():
        if speakers_per_part is not None:
            items = _keep_speakers(items, int(speakers_per_part))
        if not items:
            raise InputError(f"{corpus_dir}: the {part} split has no recordings")
        wav_scp, text, utt2spk = {}, {}, {}
        for word, speaker, index, path in items:
            utt = f"{speaker}-{word}-{index:02d}"
            wav_scp[utt] = str(path)
            if lexicon_words is not None and word not in lexicon_words:
                unknown_words.add(word)
                text[utt] = "<UNK>"
            else:
                text[utt] = word
            utt2spk[utt] = speaker
        clips = noise_parts.get(part, [])
        if speakers_per_part is not None:
            clips = clips[: max(NOISE_PER_SPEAKER, len(items) // 20)]
        for k, (clip, spec) in enumerate(clips):
            spk = f"noise{k // NOISE_PER_SPEAKER:02d}"
            utt = f"{spk}-silence-{clip}"
            wav_scp[utt], text[utt], utt2spk[utt] = spec, SILENCE_WORD, spk
        tables[part] = (wav_scp, text, utt2spk, len(clips))
    if heldout_speakers is not None:
        tables["train"], tables["heldout"] = _split_heldout(tables["train"], heldout_speakers, corpus_dir)

    result = {}
    for part, (wav_scp, text, utt2spk, num_clips) in tables.items():
        data = DataDir(wav_scp=dict(sorted(wav_scp.items())), text=dict(sorted(text.items())),
                       utt2spk=dict(sorted(utt2spk.items())))
        data.save(out_dir / part)
        result[part] = DataDir.load(out_dir / part)
        log.info("%s: %d utterances (%d noise), %d speakers", out_dir / part, len(utt2spk), num_clips,
                 len(set(utt2spk.values())))
        if num_clips and part != "heldout":
            noise_data = DataDir(wav_scp={u: s for u, s in wav_scp.items() if text[u] == SILENCE_WORD},
                                 utt2spk={u: s for u, s in utt2spk.items() if text[u] == SILENCE_WORD})
            noise_data.save(out_dir / f"noise_{part}")
    if unknown_words:
        log.warning("%s: words not in the lexicon are transcribed <UNK>: %s", corpus_dir, " ".join(sorted(unknown_words)))
    return result


def _split_heldout(train, heldout_speakers, corpus_dir):
    """(train, heldout) tables of the train part `train` (wav_scp, text, utt2spk, noise clips): the
    speakers listed in the file `heldout_speakers` go to heldout. Ids are checked against train's
    speakers first (file:line)."""
    from kaldilite.io.datadir import read_entries

    wav_scp, text, utt2spk, _ = train
    speakers = set(utt2spk.values())
    listed = set()
    for entry in read_entries(heldout_speakers):
        if entry.key not in speakers:
            raise InputError(f"{heldout_speakers}:{entry.line}: {entry.key} is not a training speaker of {corpus_dir} "
                             "(dev speakers are held out already); list ids of the prepared train/spk2utt")
        listed.add(entry.key)
    if not listed:
        raise InputError(f"{heldout_speakers}: no speaker ids; give one training speaker id per line")
    if listed == speakers:
        raise InputError(f"{heldout_speakers}: lists every training speaker; nothing would be left to train on")
    out = []
    for keep in (False, True):
        utts = {u for u, s in utt2spk.items() if (s in listed) == keep}
        out.append(({u: wav_scp[u] for u in utts}, {u: text[u] for u in utts}, {u: utt2spk[u] for u in utts},
                    sum(text[u] == SILENCE_WORD for u in utts)))
    return tuple(out)


def _keep_speakers(items, count):
    """The first `count` speakers, preferring those with a non-command recording (the rare class)."""
    speakers = sorted({spk for _, spk, _, _ in items})
    with_filler = [s for s in speakers if any(spk == s and w not in COMMANDS for w, spk, _, _ in items)]
    chosen = set((with_filler + [s for s in speakers if s not in with_filler])[:count])
    return [it for it in items if it[1] in chosen]

