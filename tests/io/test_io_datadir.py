"""Data dirs, checked against Kaldi's own utils/*.sh scripts run from the Kaldi checkout.

The reference scripts (validate_data_dir.sh, fix_data_dir.sh, split_data.sh, subset_data_dir.sh,
combine_data.sh) are extracted from the bare Kaldi mirror and run with bash/perl under LC_ALL=C;
those tests skip when the mirror or perl is absent.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.datadir import (
    DataDir,
    Segment,
    combine_data_dirs,
    fix_data_dir,
    split_data_dir,
    subset_data_dir,
    validate_data_dir,
)

KALDI_MIRROR = Path("/work/.mirror/kaldi-asr+kaldi/repo")
DATA_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "segments", "feats.scp", "cmvn.scp", "utt2dur")


@pytest.fixture(scope="session")
def kaldi_s5(tmp_path_factory):
    """A directory with Kaldi's `utils/` in it (egs/wsj/s5), or skip."""
    if not KALDI_MIRROR.exists() or shutil.which("perl") is None:
        pytest.skip("Kaldi mirror or perl not available for the reference scripts")
    root = tmp_path_factory.mktemp("kaldi")
    archive = subprocess.run(["git", "-C", str(KALDI_MIRROR), "archive", "HEAD", "egs/wsj/s5/utils"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root / "egs" / "wsj" / "s5"


def kaldi(kaldi_s5, *args):
    env = dict(os.environ, LC_ALL="C", PATH=f"{kaldi_s5 / 'utils'}:{os.environ['PATH']}")
    return subprocess.run(["bash", *args], cwd=kaldi_s5, env=env, capture_output=True, text=True)


def write_dir(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (path / name).write_text("".join(line + "\n" for line in lines))
    return path


def read_files(path):
    """The data files of a dir, with trailing blanks dropped (Kaldi's awk leaves some in spk2utt)."""
    return {name: "".join(line.rstrip() + "\n" for line in (path / name).read_text().splitlines())
            for name in DATA_FILES if (path / name).exists()}


def make_corpus(path, rng, num_speakers=7, wav_dir=None):
    """A consistent data dir with uneven utterances per speaker (speaker-prefixed utt ids)."""
    files = {"utt2spk": [], "text": [], "wav.scp": [], "feats.scp": [], "utt2dur": []}
    speakers = [f"spk{chr(ord('a') + k)}" for k in range(num_speakers)]
    for spk in speakers:
        for i in range(int(rng.integers(1, 9))):
            utt = f"{spk}-{i:03d}"
            files["utt2spk"].append(f"{utt} {spk}")
            files["text"].append(f"{utt} turn on the light")
            files["wav.scp"].append(f"{utt} {wav_dir or '/data'}/{utt}.wav")
            files["feats.scp"].append(f"{utt} /feats/raw.1.ark:{100 + 7 * i}")
            files["utt2dur"].append(f"{utt} {0.5 + i / 10:.2f}")
    files["spk2utt"] = [f"{s} " + " ".join(l.split()[0] for l in files["utt2spk"] if l.endswith(" " + s)) for s in speakers]
    files["cmvn.scp"] = [f"{s} /feats/cmvn.ark:{10 * k + 3}" for k, s in enumerate(speakers)]
    return write_dir(path, files)


# --------------------------------------------------------------------------------- load/save


def test_load_parses_each_file_and_save_round_trips(tmp_path):
    src = write_dir(tmp_path / "d", {
        "utt2spk": ["b-2 b", "a-1 a", "a-2 a"],
        "spk2utt": ["a a-1 a-2", "b b-2"],
        "text": ["a-1 TURN ON", "a-2 ", "b-2 stop"],
        "segments": ["a-1 rec1 0.00 1.25", "a-2 rec1 1.50 2.00", "b-2 rec2 0 0.75"],
        "wav.scp": ["rec2 sox /x/r2.flac -t wav - |", "rec1 /x/r1.wav"],
        "utt2dur": ["a-1 1.25", "a-2 0.5", "b-2 0.75"],
    })
    data = DataDir.load(src)
    assert list(data.utt2spk) == ["a-1", "a-2", "b-2"]  # sorted on load
    assert data.text == {"a-1": "TURN ON", "a-2": "", "b-2": "stop"}
    assert data.spk2utt == {"a": ["a-1", "a-2"], "b": ["b-2"]}
    assert data.segments["a-2"] == Segment("rec1", 1.5, 2.0)
    assert data.wav_scp["rec2"] == "sox /x/r2.flac -t wav - |"
    assert data.utt2dur["a-1"] == 1.25 and data.feats_scp is None and data.cmvn_scp is None
    assert len(data) == 3 and data.speakers == ["a", "b"]
    data.save(tmp_path / "copy")
    again = DataDir.load(tmp_path / "copy")
    assert again.segments == data.segments and again.text == data.text and again.wav_scp == data.wav_scp
    assert (tmp_path / "copy" / "segments").read_text().splitlines()[2] == "b-2 rec2 0.00 0.75"
    data.utt2dur["a-1"] = 3600.123456789
    data.segments["a-1"] = Segment("rec1", 0.0005, 3600.123456789)
    data.save(tmp_path / "precise")
    again = DataDir.load(tmp_path / "precise")
    assert again.utt2dur["a-1"] == 3600.123456789 and again.segments["a-1"] == data.segments["a-1"]


def test_load_reports_duplicates_with_file_and_line(tmp_path):
    write_dir(tmp_path / "d", {"utt2spk": ["a-1 a", "a-1 a"]})
    with pytest.raises(InputError, match=r"d/utt2spk:2: duplicate key a-1 \(first at line 1\)"):
        DataDir.load(tmp_path / "d")
    with pytest.raises(MissingFileError):
        DataDir.load(tmp_path / "nope")


def test_c_locale_order_puts_uppercase_before_lowercase(tmp_path):
    data = DataDir(utt2spk={"b-1": "b", "B-1": "B", "a_1": "a", "a-1": "a"})
    data.save(tmp_path / "d")
    ours = (tmp_path / "d" / "utt2spk").read_text()
    expected = subprocess.run(["sort"], input="b-1 b\nB-1 B\na_1 a\na-1 a\n", capture_output=True, text=True,
                              env=dict(os.environ, LC_ALL="C")).stdout
    assert ours == expected


# --------------------------------------------------------------------------------- validate


def test_consistent_dir_validates_here_and_in_kaldi(tmp_path, rng, kaldi_s5):
    path = make_corpus(tmp_path / "d", rng)
    assert validate_data_dir(path, check_audio=False) == []
    result = kaldi(kaldi_s5, "utils/validate_data_dir.sh", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def problems_of(path, **options):
    return [str(p) for p in validate_data_dir(path, check_audio=False, **options) if not p.warning]


def test_unsorted_text_is_reported_at_the_line_and_kaldi_agrees(tmp_path, rng, kaldi_s5):
    path = make_corpus(tmp_path / "d", rng)
    lines = (path / "text").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (path / "text").write_text("\n".join(lines) + "\n")
    problems = problems_of(path)
    assert problems == [f"{path}/text:3: not sorted: {lines[2].split()[0]} comes after {lines[1].split()[0]} "
                        "(Kaldi needs LC_ALL=C sort order); run 'kaldilite data fix'"]
    assert kaldi(kaldi_s5, "utils/validate_data_dir.sh", str(path)).returncode != 0


def test_utterance_in_text_but_not_in_wav_scp(tmp_path, rng, kaldi_s5):
    path = make_corpus(tmp_path / "d", rng)
    wav = (path / "wav.scp").read_text().splitlines()
    removed = wav.pop(2)
    (path / "wav.scp").write_text("\n".join(wav) + "\n")
    utt = removed.split()[0]
    assert problems_of(path) == [f"{path}/wav.scp: utterance {utt} (utt2spk:3) has no line here; "
                                 "add it or run 'kaldilite data fix'"]
    assert kaldi(kaldi_s5, "utils/validate_data_dir.sh", str(path)).returncode != 0


def test_text_line_for_unknown_utterance_is_reported_at_its_line(tmp_path, rng):
    path = make_corpus(tmp_path / "d", rng)
    with open(path / "text", "a") as handle:
        handle.write("zzz-999 hello\n")
    n = len((path / "text").read_text().splitlines())
    assert problems_of(path) == [f"{path}/text:{n}: utterance zzz-999 is not in utt2spk; remove it or run 'kaldilite data fix'"]


def test_zero_length_utterance_in_utt2dur_and_segments(tmp_path, kaldi_s5):
    path = write_dir(tmp_path / "d", {
        "utt2spk": ["a-1 a", "a-2 a", "b-1 b"], "spk2utt": ["a a-1 a-2", "b b-1"],
        "text": ["a-1 on", "a-2 off", "b-1 on"], "wav.scp": ["r1 /x/r1.wav"],
        "segments": ["a-1 r1 0.0 1.0", "a-2 r1 1.0 1.0", "b-1 r1 2.0 3.0"],
        "utt2dur": ["a-1 1.0", "a-2 0", "b-1 1.0"],
    })
    assert problems_of(path, no_feats=True) == [
        f"{path}/segments:2: utterance a-2 has start 1.0 and end 1.0; it must have 0 <= start < end (zero-length utterance)",
        f"{path}/utt2dur:2: utterance a-2 has duration 0 (zero-length utterance); remove it with 'kaldilite data fix'",
    ]
    assert kaldi(kaldi_s5, "utils/validate_data_dir.sh", "--no-feats", str(path)).returncode != 0
    fix_data_dir(path)
    assert problems_of(path, no_feats=True) == []
    assert (path / "utt2spk").read_text() == "a-1 a\nb-1 b\n"


def test_spk2utt_mismatch_and_speaker_sort(tmp_path):
    path = write_dir(tmp_path / "d", {
        "utt2spk": ["u1 b", "u2 a"], "spk2utt": ["a u2", "b u1 u3"], "text": ["u1 x", "u2 y"],
    })
    assert problems_of(path, no_wav=True, no_feats=True) == [
        f"{path}/utt2spk:2: not sorted by speaker too: u2 (a) comes after u1 (b); make speaker-ids prefixes of utterance-ids",
        f"{path}/spk2utt:2: speaker b lists u3, which utt2spk does not have; run 'kaldilite data fix'",
    ]
    assert problems_of(path, no_wav=True, no_feats=True, no_spk_sort=True)[0].startswith(f"{path}/spk2utt:2")


def test_missing_files_and_kaldi_style_flags(tmp_path, rng):
    path = make_corpus(tmp_path / "d", rng)
    (path / "feats.scp").unlink()
    (path / "text").unlink()
    assert problems_of(path) == [
        f"{path}/text: is missing (if this is by design, pass --no-text)",
        f"{path}/feats.scp: is missing (if this is by design, pass --no-feats; or compute features)",
    ]
    assert problems_of(path, no_text=True, no_feats=True) == []


def test_empty_transcript_is_a_warning_and_reserved_words_an_error(tmp_path):
    path = write_dir(tmp_path / "d", {"utt2spk": ["a-1 a", "b-1 b"], "spk2utt": ["a a-1", "b b-1"],
                                      "text": ["a-1", "b-1 <s> on"]})
    problems = validate_data_dir(path, no_wav=True, no_feats=True)
    assert [str(p) for p in problems] == [
        f"{path}/text:1: warning: utterance a-1 has an empty transcript",
        f"{path}/text:2: transcript contains the reserved symbol <s>; remove it",
    ]


def test_segments_naming_an_unknown_recording(tmp_path):
    path = write_dir(tmp_path / "d", {"utt2spk": ["a-1 a", "b-1 b"], "spk2utt": ["a a-1", "b b-1"],
                                      "text": ["a-1 on", "b-1 off"], "wav.scp": ["r1 /x/r1.wav"],
                                      "segments": ["a-1 r1 0 1", "b-1 r9 0 1"]})
    assert problems_of(path, no_feats=True) == [
        f"{path}/segments:2: recording r9 is not in wav.scp; add it or remove its segments"]


def test_audio_check_finds_missing_empty_stereo_and_wrong_rate_files(tmp_path, fsdd_dir):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    (wavs / "empty.wav").write_bytes(b"")
    soundfile.write(str(wavs / "stereo.wav"), np.zeros((800, 2), np.int16), 16000, subtype="PCM_16")
    soundfile.write(str(wavs / "ok.wav"), np.ones(1600, np.int16), 16000, subtype="PCM_16")
    entries = {"a-1": wavs / "ok.wav", "a-2": wavs / "missing.wav", "a-3": wavs / "empty.wav",
               "a-4": wavs / "stereo.wav", "a-5": fsdd_dir / "0_george_0.wav", "a-6": "cat /x.wav |"}
    path = write_dir(tmp_path / "d", {
        "utt2spk": [f"{u} a" for u in entries], "spk2utt": ["a " + " ".join(entries)],
        "text": [f"{u} on" for u in entries], "wav.scp": [f"{u} {w}" for u, w in entries.items()],
    })
    problems = [str(p) for p in validate_data_dir(path, no_feats=True, sample_frequency=16000) if not p.warning]
    assert problems == [
        f"{path}/wav.scp:2: {wavs}/missing.wav: no such audio file; fix the path in wav.scp or restore the file",
        f"{path}/wav.scp:3: {wavs}/empty.wav: empty file (0 bytes); re-create it or remove the utterance (fix_data_dir)",
        f"{path}/wav.scp:4: {wavs}/stereo.wav: has 2 channels; convert to mono (sox in.wav -c 1 out.wav) or extract "
        "one channel in wav.scp ('sox in.wav -t wav - remix 1 |')",
        f"{path}/wav.scp:5: {fsdd_dir}/0_george_0.wav: sample rate 8000 Hz but --sample-frequency=16000; resample the "
        "data or pass --allow-upsample=true to feature extraction",
    ]


# --------------------------------------------------------------------------------- fix/split/subset/combine


def messy_dir(path, rng):
    make_corpus(path, rng)
    files = {name: (path / name).read_text().splitlines() for name in ("text", "feats.scp", "utt2dur", "cmvn.scp", "wav.scp")}
    del files["text"][4]                                 # utterance without transcript
    del files["feats.scp"][7]                            # utterance without features
    files["utt2dur"][9] = files["utt2dur"][9].split()[0] + " 0"   # zero-length
    files["wav.scp"].reverse()                           # unsorted
    files["cmvn.scp"].append("zzz /feats/cmvn.ark:999")  # speaker without utterances
    for name, lines in files.items():
        (path / name).write_text("\n".join(lines) + "\n")
    return path


def test_fix_matches_kaldis_fix_data_dir(tmp_path, rng, kaldi_s5):
    ours = messy_dir(tmp_path / "ours", rng)
    theirs = tmp_path / "theirs"
    shutil.copytree(ours, theirs)
    report = fix_data_dir(ours)
    result = kaldi(kaldi_s5, "utils/fix_data_dir.sh", str(theirs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_files(ours) == read_files(theirs)
    assert report["cmvn.scp"][0] == 8 and report["text"][1] == report["utt2spk"][1]
    assert (ours / ".backup" / "wav.scp").exists()
    assert problems_of(ours) == []


@pytest.mark.parametrize("num_parts", [1, 2, 3, 5, 7])
def test_split_matches_kaldis_split_data(tmp_path, rng, kaldi_s5, num_parts):
    ours = make_corpus(tmp_path / "ours", rng)
    theirs = tmp_path / "theirs"
    shutil.copytree(ours, theirs)
    parts = split_data_dir(ours, num_parts)
    result = kaldi(kaldi_s5, "utils/split_data.sh", str(theirs), str(num_parts))
    assert result.returncode == 0, result.stdout + result.stderr
    assert parts == [ours / f"split{num_parts}" / str(k) for k in range(1, num_parts + 1)]
    for k in range(1, num_parts + 1):
        assert read_files(ours / f"split{num_parts}" / str(k)) == read_files(theirs / f"split{num_parts}" / str(k))


def test_split_keeps_speakers_whole_and_reuses_an_up_to_date_split(tmp_path, rng):
    path = make_corpus(tmp_path / "d", rng, num_speakers=9)
    parts = split_data_dir(path, 4)
    seen = {}
    for part in parts:
        for line in (part / "utt2spk").read_text().splitlines():
            utt, spk = line.split()
            assert seen.setdefault(spk, part) == part
    assert sum(len((p / "utt2spk").read_text().splitlines()) for p in parts) == len((path / "utt2spk").read_text().splitlines())
    stamp = (parts[0] / "text").stat().st_mtime_ns
    assert split_data_dir(path, 4) == parts and (parts[0] / "text").stat().st_mtime_ns == stamp
    os.utime(path / "text", ns=(stamp + 10**9, stamp + 10**9))   # the source changed: split again
    split_data_dir(path, 4)
    assert (parts[0] / "text").stat().st_mtime_ns > stamp
    (path / "feats.scp").unlink()                                  # features set aside: drop them from the parts
    split_data_dir(path, 4)
    assert not any((part / "feats.scp").exists() for part in parts)


def test_split_into_more_parts_than_speakers_says_so(tmp_path, rng):
    path = make_corpus(tmp_path / "d", rng, num_speakers=3)
    with pytest.raises(InputError, match=r"cannot split into 4 parts by speaker, it has only 3 speaker\(s\); use --nj <= 3"):
        split_data_dir(path, 4)
    assert len(split_data_dir(path, 4, per_utt=True)) == 4


@pytest.mark.parametrize("option", [[], ["--per-spk"], ["--first"], ["--last"]])
def test_subset_matches_kaldis_subset_data_dir(tmp_path, rng, kaldi_s5, option):
    src = make_corpus(tmp_path / "src", rng)
    n = 3 if option == ["--per-spk"] else 11
    kwargs = {"--per-spk": {"per_spk": True}, "--first": {"first": True}, "--last": {"last": True}}.get(
        option[0] if option else "", {})
    subset_data_dir(src, tmp_path / "ours", n, **kwargs)
    result = kaldi(kaldi_s5, "utils/subset_data_dir.sh", *option, str(src), str(n), str(tmp_path / "theirs"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_files(tmp_path / "ours") == read_files(tmp_path / "theirs")


def test_subset_by_utterance_and_speaker_lists(tmp_path, rng):
    src = make_corpus(tmp_path / "src", rng)
    subset_data_dir(src, tmp_path / "u", utt_list=["spka-000", "spkc-000", "nobody"])
    assert (tmp_path / "u" / "utt2spk").read_text() == "spka-000 spka\nspkc-000 spkc\n"
    assert (tmp_path / "u" / "cmvn.scp").read_text().count("\n") == 2
    subset_data_dir(src, tmp_path / "s", spk_list=["spkb"])
    assert set((tmp_path / "s" / "spk2utt").read_text().split()[:1]) == {"spkb"}
    subset_data_dir(src, tmp_path / "short", 2, shortest=True)
    assert all(line.split()[0].endswith(("-000")) for line in (tmp_path / "short" / "utt2spk").read_text().splitlines())


def test_combine_matches_kaldis_combine_data(tmp_path, rng, kaldi_s5):
    one = make_corpus(tmp_path / "one", rng, num_speakers=3)
    two = tmp_path / "two"
    write_dir(two, {"utt2spk": ["zed-1 zed"], "spk2utt": ["zed zed-1"], "text": ["zed-1 stop"],
                    "wav.scp": ["zed-1 /z.wav"], "feats.scp": ["zed-1 /f.ark:3"], "utt2dur": ["zed-1 1.5"],
                    "cmvn.scp": ["zed /c.ark:4"]})
    combine_data_dirs(tmp_path / "ours", [one, two])
    result = kaldi(kaldi_s5, "utils/combine_data.sh", str(tmp_path / "theirs"), str(one), str(two))
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_files(tmp_path / "ours") == read_files(tmp_path / "theirs")


def test_combine_refuses_conflicting_ids(tmp_path):
    a = write_dir(tmp_path / "a", {"utt2spk": ["u1 s"], "text": ["u1 on"]})
    b = write_dir(tmp_path / "b", {"utt2spk": ["u1 s"], "text": ["u1 off"]})
    with pytest.raises(InputError, match=r"b/text: key u1 is also in .*a/text with different content"):
        combine_data_dirs(tmp_path / "c", [a, b])


def test_windows_line_endings_and_missing_final_newline(tmp_path, kaldi_s5):
    path = tmp_path / "d"
    path.mkdir()
    (path / "utt2spk").write_bytes(b"a-1 a\nb-1 b\n")
    (path / "spk2utt").write_bytes(b"a a-1\nb b-1\n")
    (path / "text").write_bytes(b"a-1 on\r\nb-1 off")
    assert problems_of(path, no_wav=True, no_feats=True) == [
        f"{path}/text:2: last line has no newline at the end; add one",
        f"{path}/text:1: has Windows line endings (CR); convert the file with dos2unix",
    ]
    assert kaldi(kaldi_s5, "utils/validate_data_dir.sh", "--no-wav", "--no-feats", str(path)).returncode != 0


def segments_corpus(path, rng):
    """Recordings cut into segments; some recordings unused, one segment pointing nowhere."""
    files = {"utt2spk": [], "text": [], "segments": [], "utt2dur": []}
    for spk in ("ann", "bob", "cat", "dan"):
        for rec in range(int(rng.integers(1, 4))):
            for seg in range(int(rng.integers(1, 4))):
                utt = f"{spk}-r{rec}-s{seg}"
                files["utt2spk"].append(f"{utt} {spk}")
                files["text"].append(f"{utt} lights on")
                files["segments"].append(f"{utt} {spk}-r{rec} {seg * 2:.2f} {seg * 2 + 1.5:.2f}")
                files["utt2dur"].append(f"{utt} 1.5")
    recordings = sorted({line.split()[1] for line in files["segments"]})
    files["wav.scp"] = [f"{r} sox /audio/{r}.flac -t wav - |" for r in recordings] + ["zzz-unused /audio/zzz.wav"]
    files["reco2dur"] = [f"{r} 9.0" for r in recordings] + ["zzz-unused 3.0"]
    write_dir(path, files)
    subprocess.run(["bash", "-c", f"cd {path} && LC_ALL=C sort -o utt2spk utt2spk"], check=True)
    return path


def test_fix_and_split_with_segments_match_kaldi(tmp_path, rng, kaldi_s5):
    ours = segments_corpus(tmp_path / "ours", rng)
    theirs = tmp_path / "theirs"
    shutil.copytree(ours, theirs)
    fix_data_dir(ours)
    assert kaldi(kaldi_s5, "utils/fix_data_dir.sh", str(theirs)).returncode == 0
    for name in DATA_FILES + ("reco2dur",):
        assert (ours / name).exists() == (theirs / name).exists()
        if (ours / name).exists():
            assert (ours / name).read_text() == (theirs / name).read_text(), name
    assert "zzz-unused" not in (ours / "wav.scp").read_text()
    assert problems_of(ours, no_feats=True) == []
    assert kaldi(kaldi_s5, "utils/validate_data_dir.sh", "--no-feats", str(theirs)).returncode == 0
    for per_utt in (False, True):
        split_data_dir(ours, 3, per_utt=per_utt)
        option = ["--per-utt"] if per_utt else []
        assert kaldi(kaldi_s5, "utils/split_data.sh", *option, str(theirs), "3").returncode == 0
        base = "split3utt" if per_utt else "split3"
        for k in (1, 2, 3):
            assert read_files(ours / base / str(k)) == read_files(theirs / base / str(k))


# --------------------------------------------------------------------------------- per-utterance files


def augmented_dir(path):
    """Two speakers' clean clips and noisy copies, with the augmentation records: utt2noise (every
    utterance), utt2pad (the noisy copies only; n-a-2 unpadded, "0.00 0.00"), utt2rir, utt2gender."""
    utts = ["a-1", "a-2", "b-1", "n-a-1", "n-a-2", "n-b-1"]
    return write_dir(path, {
        "utt2spk": [f"{u} {u.rsplit('-', 1)[0]}" for u in utts],
        "spk2utt": ["a a-1 a-2", "b b-1", "n-a n-a-1 n-a-2", "n-b n-b-1"],
        "text": [f"{u} go" for u in utts],
        "wav.scp": [f"{u} /w/{u}.wav" for u in utts],
        "utt2uniq": [f"{u} {u.removeprefix('n-')}" for u in utts],
        "utt2noise": [f"{u} /noise/{k}.wav {100 * k} {5 * k}" for k, u in enumerate(utts)],
        "utt2rir": [f"{u} room{k} rt60=0.{k}00 noise=none" for k, u in enumerate(utts)],
        "utt2gender": [f"{u} {'f' if u[-3] == 'a' else 'm'}" for u in utts],
        "utt2pad": ["n-a-1 0.31 1.20", "n-a-2 0.00 0.00", "n-b-1 0.70 0.00"],
    })


def table(path, name):
    return dict(line.split(" ", 1) for line in (path / name).read_text().splitlines())


RECORDS = ("utt2noise", "utt2rir", "utt2gender", "utt2pad")


def test_subset_and_fix_keep_the_records_of_exactly_the_kept_utterances(tmp_path):
    src = augmented_dir(tmp_path / "src")
    before = {name: table(src, name) for name in RECORDS}
    subset_data_dir(src, tmp_path / "sub", utt_list=["a-1", "n-a-1", "n-b-1"])
    for name in RECORDS:
        assert table(tmp_path / "sub", name) == {u: v for u, v in before[name].items() if u in ("a-1", "n-a-1", "n-b-1")}
    assert table(tmp_path / "sub", "utt2pad") == {"n-a-1": "0.31 1.20", "n-b-1": "0.70 0.00"}
    subset_data_dir(src, tmp_path / "clean", utt_list=["a-2", "b-1"])   # no padded utterance: an empty utt2pad
    assert (tmp_path / "clean" / "utt2pad").read_text() == "" and problems_of(tmp_path / "clean", no_feats=True) == []
    (src / "utt2noise").rename(tmp_path / "utt2noise")
    subset_data_dir(src, tmp_path / "sub", utt_list=["a-2", "b-1"])     # over an older subset: no file of it left
    (tmp_path / "utt2noise").rename(src / "utt2noise")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir()
                                                                          if p.name != "utt2noise")

    lines = (src / "text").read_text().splitlines()
    (src / "text").write_text("".join(f"{line}\n" for line in lines if not line.startswith("n-a-1 ")))
    report = fix_data_dir(src)
    for name in RECORDS:
        assert table(src, name) == {u: v for u, v in before[name].items() if u != "n-a-1"}
    assert report["utt2pad"] == (3, 2) and report["utt2noise"] == (6, 5)
    assert problems_of(src, no_feats=True) == []


def test_split_parts_carry_the_records_and_a_part_without_padding_is_current(tmp_path):
    src = augmented_dir(tmp_path / "d")
    parts = split_data_dir(src, 2)
    assert [set(table(part, "utt2spk")) for part in parts] == [{"a-1", "a-2", "b-1"}, {"n-a-1", "n-a-2", "n-b-1"}]
    for name in RECORDS:
        merged = {}
        for part in parts:
            assert set(table(part, name)) <= set(table(part, "utt2spk"))
            merged.update(table(part, name))
        assert merged == table(src, name)
    subset_data_dir(src, tmp_path / "few", utt_list=["a-1", "n-a-1", "b-1"])
    few = split_data_dir(tmp_path / "few", 2)
    assert (few[0] / "utt2pad").read_text() == ""                     # speakers a and b: none padded
    stamp = (few[0] / "utt2pad").stat().st_mtime_ns
    assert split_data_dir(tmp_path / "few", 2) == few and (few[0] / "utt2pad").stat().st_mtime_ns == stamp


def test_validate_checks_the_records_keys(tmp_path):
    path = augmented_dir(tmp_path / "d")
    (path / "utt2pad").write_text("n-a-1 0.31 1.20\nzz-9 0.10 0.10\n")
    (path / "utt2noise").write_text("".join(f"{u} /noise/0.wav 0 5\n" for u in ("a-1", "a-2", "b-1", "n-a-1", "n-a-2")))
    assert problems_of(path, no_feats=True) == [
        f"{path}/utt2noise: utterance n-b-1 (utt2spk:6) has no line here; add it or run 'kaldilite data fix'",
        f"{path}/utt2pad:2: utterance zz-9 is not in utt2spk; remove it or run 'kaldilite data fix'",
    ]


def test_combine_keeps_utt2pad_of_the_parts_that_have_it_and_says_what_it_drops(tmp_path, caplog):
    padded = augmented_dir(tmp_path / "padded")
    (padded / "utt2dur").write_text("".join(f"{u} 1.{k}\n" for k, u in enumerate(table(padded, "utt2spk"))))
    clean = write_dir(tmp_path / "clean", {"utt2spk": ["c-1 c", "c-2 c"], "text": ["c-1 stop", "c-2 go"],
                                           "wav.scp": ["c-1 /w/c-1.wav", "c-2 /w/c-2.wav"],
                                           "utt2gender": ["c-1 m", "c-2 m"]})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "utt2rir").write_text("stale-1 room9\n")       # an earlier combine's: must go
    with caplog.at_level("INFO", logger="kaldilite.io.datadir"):
        combine_data_dirs(tmp_path / "out", [padded, clean])
    out = tmp_path / "out"
    assert table(out, "utt2pad") == table(padded, "utt2pad")
    assert table(out, "utt2gender") == {**table(padded, "utt2gender"), "c-1": "m", "c-2": "m"}
    assert table(out, "utt2uniq") == {**table(padded, "utt2uniq"), "c-1": "c-1", "c-2": "c-2"}
    for name in ("utt2dur", "utt2noise", "utt2rir"):
        assert not (out / name).exists()
        dropped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and f" {name}:" in r.getMessage()]
        assert dropped == [f"combine_data_dirs: not combining {name}: absent from {clean} (1 of 2 sources); "
                           "create it there to keep it"]
    assert problems_of(out, no_feats=True) == []
    segmented = write_dir(tmp_path / "seg", {"utt2spk": ["s-1 s"], "segments": ["s-1 rec 0.00 1.00"], "wav.scp": ["rec /r.wav"]})
    with pytest.raises(InputError, match=rf"^{clean}: no segments file, while {segmented}/segments has one; give every"):
        combine_data_dirs(tmp_path / "out2", [segmented, clean])


def test_combine_utt2uniq_of_some_parts_matches_kaldis_combine_data(tmp_path, rng, kaldi_s5):
    one = make_corpus(tmp_path / "one", rng, num_speakers=2)
    two = write_dir(tmp_path / "two", {"utt2spk": ["sp0.9-spka-000 sp0.9-spka"], "text": ["sp0.9-spka-000 stop"],
                                       "utt2uniq": ["sp0.9-spka-000 spka-000"]})
    combine_data_dirs(tmp_path / "ours", [one, two])
    result = kaldi(kaldi_s5, "utils/combine_data.sh", str(tmp_path / "theirs"), str(one), str(two))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "ours" / "utt2uniq").read_text() == (tmp_path / "theirs" / "utt2uniq").read_text()
    assert read_files(tmp_path / "ours") == read_files(tmp_path / "theirs")


def test_extra_files_combined_and_fixed_as_kaldis_extra_files_options(tmp_path, rng, kaldi_s5, caplog):
    """`data combine --extra-files` and `data fix --utt-extra-files` (the Kaldi scripts' option names):
    the files Kaldi writes, a part without the file dropped with the warning, a name with a slash refused."""
    from click.testing import CliRunner

    from kaldilite.cli import cli

    one = make_corpus(tmp_path / "one", rng, num_speakers=2)
    two = write_dir(tmp_path / "two", {"utt2spk": ["zed-1 zed"], "spk2utt": ["zed zed-1"], "text": ["zed-1 stop"],
                                       "wav.scp": ["zed-1 /z.wav"], "feats.scp": ["zed-1 /f.ark:3"],
                                       "utt2dur": ["zed-1 1.5"], "cmvn.scp": ["zed /c.ark:4"], "utt2age": ["zed-1 71"]})
    (one / "utt2age").write_text("".join(f"{line.split()[0]} {20 + k}\n"
                                         for k, line in enumerate((one / "utt2spk").read_text().splitlines())))
    result = CliRunner().invoke(cli, ["data", "combine", "--extra-files", "utt2age utt2uniq", str(tmp_path / "ours"),
                                      str(one), str(two)])
    assert result.exit_code == 0, result.output
    kaldi_run = kaldi(kaldi_s5, "utils/combine_data.sh", "--extra-files", "utt2age", str(tmp_path / "theirs"), str(one),
                      str(two))
    assert kaldi_run.returncode == 0, kaldi_run.stdout + kaldi_run.stderr
    assert (tmp_path / "ours" / "utt2age").read_text() == (tmp_path / "theirs" / "utt2age").read_text()
    assert read_files(tmp_path / "ours") == read_files(tmp_path / "theirs")
    (two / "utt2age").unlink()
    result = CliRunner().invoke(cli, ["data", "combine", "--extra-files", "utt2age", str(tmp_path / "ours"), str(one),
                                      str(two)])
    assert result.exit_code == 0 and not (tmp_path / "ours" / "utt2age").exists()
    assert f"not combining utt2age: absent from {two} (1 of 2 sources)" in caplog.text
    result = CliRunner().invoke(cli, ["data", "combine", "--extra-files", "../utt2age", str(tmp_path / "x"), str(one)])
    assert isinstance(result.exception, InputError) and "--extra-files '../utt2age'" in str(result.exception)

    ours = messy_dir(tmp_path / "fix_ours", rng)
    (ours / "utt2age").write_text("".join(f"{line.split()[0]} {30 + k}\n" for k, line in
                                          enumerate(reversed((ours / "utt2spk").read_text().splitlines()))))
    theirs = tmp_path / "fix_theirs"
    shutil.copytree(ours, theirs)
    assert CliRunner().invoke(cli, ["data", "fix", "--utt-extra-files", "utt2age", str(ours)]).exit_code == 0
    kaldi_run = kaldi(kaldi_s5, "utils/fix_data_dir.sh", "--utt-extra-files", "utt2age", str(theirs))
    assert kaldi_run.returncode == 0, kaldi_run.stdout + kaldi_run.stderr
    assert (ours / "utt2age").read_text() == (theirs / "utt2age").read_text()
    assert len((ours / "utt2age").read_text().splitlines()) < len((ours / ".backup" / "utt2age").read_text().splitlines())


def test_a_file_that_is_not_utf8_is_one_error_at_its_line(tmp_path, capsys):
    """A Latin-1 byte on line 1501 of text, past the 8 KB the text reader decodes at a time: validate
    reports line 1501 (it reported the line within that chunk), and fix, subset, combine, split
    and DataDir.load stop with one InputError naming text:1501 (they ended in a UnicodeDecodeError
    traceback); the CLI prints that one line and exits 1."""
    from kaldilite.cli import run_verb

    utts = [f"s{k % 3}-{k:05d}" for k in range(2000)]
    src = write_dir(tmp_path / "d", {"utt2spk": [f"{u} {u[:2]}" for u in sorted(utts)]})
    lines = [f"{u} hello".encode() for u in sorted(utts)]
    lines[1500] = lines[1500].replace(b"hello", b"caf\xe9")
    (src / "text").write_bytes(b"\n".join(lines) + b"\n")
    assert len(b"\n".join(lines[:1500])) > 2 * 8192  # past the first chunks
    expected = f"{src / 'text'}:1501: is not valid UTF-8"

    assert [p for p in problems_of(src, no_feats=True, no_wav=True) if "UTF-8" in p] == [
        f"{expected}; re-encode the file as UTF-8"]
    for operation in (lambda: fix_data_dir(src), lambda: subset_data_dir(src, tmp_path / "sub", 10),
                      lambda: combine_data_dirs(tmp_path / "all", [src]), lambda: split_data_dir(src, 2),
                      lambda: DataDir.load(src)):
        with pytest.raises(InputError, match=f"^{expected}; re-encode the file as UTF-8 "):
            operation()
    capsys.readouterr()
    assert run_verb(["data", "fix", str(src)]) == 1  # what `kaldilite data fix` exits with
    assert capsys.readouterr().err.splitlines() == [
        f"kaldilite data: error: {expected}; re-encode the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)"]


def test_a_speaker_indexed_extra_file_is_refused_not_emptied(tmp_path, rng):
    """--extra-files / --utt-extra-files filter by utterance: a speaker-indexed spk2age given there was
    combined and then emptied by the fix, silently (fix in place: the file emptied, its copy in .backup).
    Now one error naming the file, and nothing written. An utterance-indexed file keeps working."""
    one = make_corpus(tmp_path / "one", rng, num_speakers=3)
    two = make_corpus(tmp_path / "two", rng, num_speakers=2)
    for file in two.iterdir():  # other speakers and utterances than one's
        file.write_text(file.read_text().replace("spk", "other"))
    for source in (one, two):
        speakers = sorted({line.split()[1] for line in (source / "utt2spk").read_text().splitlines()})
        (source / "spk2age").write_text("".join(f"{spk} {30 + k}\n" for k, spk in enumerate(speakers)))
    with pytest.raises(InputError, match=f"^{one / 'spk2age'}: none of its keys is an utterance-id of utt2spk "
                                         r"\(line 1: spka\); --extra-files takes utterance-indexed files only"):
        combine_data_dirs(tmp_path / "all", [one, two], extra_files="spk2age")
    assert not (tmp_path / "all").exists()
    before = (one / "spk2age").read_text()
    with pytest.raises(InputError, match=f"^{one / 'spk2age'}: .* --utt-extra-files takes utterance-indexed"):
        fix_data_dir(one, utt_extra_files="spk2age")
    assert (one / "spk2age").read_text() == before
    for source in (one, two):  # the same values keyed by utterance: combined and kept
        utts = [line.split()[0] for line in (source / "utt2spk").read_text().splitlines()]
        (source / "utt2age").write_text("".join(f"{u} 40\n" for u in utts))
    combine_data_dirs(tmp_path / "all", [one, two], extra_files="utt2age")
    assert (tmp_path / "all" / "utt2age").read_text() == "".join(
        f"{line.split()[0]} 40\n" for line in (tmp_path / "all" / "utt2spk").read_text().splitlines())
    assert len((tmp_path / "all" / "utt2spk").read_text().splitlines()) == sum(
        len((source / "utt2spk").read_text().splitlines()) for source in (one, two))
