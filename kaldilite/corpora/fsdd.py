"""Free Spoken Digit Dataset (FSDD) -> Kaldi data directories.

FSDD (Jakobovski et al., CC BY-SA 4.0): `recordings/{digit}_{speaker}_{take}.wav`, 8 kHz mono,
six male speakers x ten digits x 50 takes. Two splits, as the dataset's README suggests:

- `independent`: train george, jackson, lucas, nicolas; test theo, yweweler (2000 / 1000 utts);
- `dependent`: takes 0-4 of every speaker and digit are test, takes 5-49 train (2700 / 300).

Utterance ids are `<speaker>-<digit>-<take:02d>` so that sorting by utterance also groups
speakers, as Kaldi requires; transcripts are the English digit words.
"""

import logging
import re
from pathlib import Path

from kaldilite.corpora._download import fetch_corpus
from kaldilite.errors import InputError

log = logging.getLogger(__name__)

URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SI_TRAIN_SPEAKERS = ("george", "jackson", "lucas", "nicolas")
SI_TEST_SPEAKERS = ("theo", "yweweler")
SPLITS = ("independent", "dependent")
_NAME = re.compile(r"^([0-9])_([A-Za-z]+)_([0-9]+)\.wav$")


def _is_fsdd(path):
    return (Path(path) / "recordings").is_dir()


def download_fsdd(target, source=None):
    """Return the FSDD root (the folder holding `recordings/`): `source` or a one-time download."""
    return fetch_corpus("fsdd", target, source, URL, _is_fsdd)


def list_recordings(corpus_dir):
    """All recordings as (speaker, digit, take, path), sorted; raises if none are found."""
    recordings = Path(corpus_dir) / "recordings"
    found = []
    for path in sorted(recordings.glob("*.wav")):
        match = _NAME.match(path.name)
        if match is None:
            log.warning("%s: not an FSDD file name ({digit}_{speaker}_{take}.wav); skipped", path)
            continue
        digit, speaker, take = match.groups()
        found.append((speaker, int(digit), int(take), path.resolve()))
    if not found:
        raise InputError(f"{recordings}: no FSDD recordings ({{digit}}_{{speaker}}_{{take}}.wav) found")
    return found


def prepare_fsdd(corpus_dir, out_dir, split="independent", train_takes=None, test_takes=None):
    """Write `out_dir/train` and `out_dir/test` Kaldi data dirs for `split`.

    `train_takes` / `test_takes` keep only that many takes (the lowest-numbered ones of each
    side) per speaker and digit, for quick runs. Returns {"train": DataDir, "test": DataDir}.
    """
    from kaldilite.io.datadir import DataDir

    if split not in SPLITS:
        raise InputError(f"unknown FSDD split '{split}'; choose one of {', '.join(SPLITS)}")
    parts = {"train": [], "test": []}
    for speaker, digit, take, path in list_recordings(corpus_dir):
        if split == "independent":
            part = "test" if speaker in SI_TEST_SPEAKERS else "train"
        else:
            part = "test" if take < 5 else "train"
        parts[part].append((speaker, digit, take, path))
    limits = {"train": train_takes, "test": test_takes}
    result = {}
    for part, items in parts.items():
        if limits[part] is not None:
            first_take = 0 if (split == "independent" or part == "test") else 5
            items = [it for it in items if it[2] < first_take + int(limits[part])]
        if not items:
            raise InputError(f"{corpus_dir}: the {split} split leaves no {part} recordings")
        wav_scp, text, utt2spk = {}, {}, {}
        for speaker, digit, take, path in items:
            utt = f"{speaker}-{digit}-{take:02d}"
            wav_scp[utt] = str(path)
            text[utt] = DIGIT_WORDS[digit]
            utt2spk[utt] = speaker
        data = DataDir(wav_scp=dict(sorted(wav_scp.items())), text=dict(sorted(text.items())),
                       utt2spk=dict(sorted(utt2spk.items())))
        data.save(Path(out_dir) / part)
        data = DataDir.load(Path(out_dir) / part)
        log.info("%s: %d utterances, %d speakers", Path(out_dir) / part, len(utt2spk), len(set(utt2spk.values())))
        result[part] = data
    return result
