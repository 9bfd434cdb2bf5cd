"""bench/make_slice.py: which speakers it holds out, its leak check against hand-made training dirs, and
run.sh's stage 0 with --heldout-speakers on the shared subset (the documented slice, nothing of it in train)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kaldilite.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import make_slice as ms  # noqa: E402

RUN = Path(__file__).resolve().parents[2] / "recipes" / "commands" / "run.sh"


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_every_nth_speaker_counts_positions_from_one_in_sorted_order(tmp_path):
    speakers = ["noise01", "0a", "b2", "noise00", "1f", "c0", "a9"]  # sorted: 0a 1f a9 b2 c0 noise00 noise01
    _write(tmp_path / "spk2utt", [f"{s} {s}-yes-00" for s in speakers])
    assert ms.every_nth_speaker(tmp_path / "spk2utt", 3) == ["a9", "noise00"]
    assert ms.every_nth_speaker(tmp_path / "spk2utt", 7) == ["noise01"]
    assert ms.every_nth_speaker(tmp_path / "spk2utt", 8) == []
    # the noise pseudo-speakers come after every recorded speaker, also one whose id sorts after "noise"
    _write(tmp_path / "spk2utt", [f"{s} {s}-yes-00" for s in speakers + ["zz9", "noise2x"]])
    # order: 0a 1f a9 b2 c0 noise2x zz9 noise00 noise01 (noise2x: a recorded speaker, not noiseNN)
    assert ms.every_nth_speaker(tmp_path / "spk2utt", 3) == ["a9", "noise2x", "noise01"]


def test_slice_features_follow_an_edit_of_the_recipe_confs(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from kaldilite.io.tables import read_matrices

    d = tmp_path / "slc"
    rng = np.random.default_rng(0)
    for k, utt in enumerate(["s1-no-00", "s1-yes-00"]):
        sf.write(tmp_path / f"{k}.wav", (rng.standard_normal(8000) * 1000).astype(np.int16), 16000)
    _write(d / "data/heldout/wav.scp", [f"s1-no-00 {tmp_path}/0.wav", f"s1-yes-00 {tmp_path}/1.wav"])
    _write(d / "data/heldout/utt2spk", ["s1-no-00 s1", "s1-yes-00 s1"])
    _write(d / "data/heldout/spk2utt", ["s1 s1-no-00 s1-yes-00"])
    _write(d / "data/heldout/text", ["s1-no-00 no", "s1-yes-00 yes"])
    conf = tmp_path / "conf"
    shutil.copytree(ms.CONF, conf)
    monkeypatch.setattr(ms, "CONF", conf)

    def dims():
        return [{m.shape[1] for _, m in read_matrices(f"scp:{d}/data/{n}/feats.scp")} for n in ("slice", "hires_slice")]

    ms.slice_features(d, 1)
    assert dims() == [{13}, {40}] and (d / "data/hires_slice/cmvn.scp").is_file()
    with open(conf / "mfcc_hires.conf", "a") as f:
        f.write("--num-ceps=20\n")  # (the last value of an option wins, as in Kaldi)
    ms.slice_features(d, 1)
    assert dims() == [{13}, {20}]


def _slice_dir(tmp_path):
    """A slice of speaker s1 (two clips) and one noise chunk; a training set of speaker t1 with speed and
    noise copies, none of them the slice's."""
    d = tmp_path / "slc"
    _write(d / "data/slice/utt2spk", ["noise01-silence-n_003 noise01", "s1-no-00 s1", "s1-yes-00 s1"])
    _write(d / "data/slice/wav.scp", ["noise01-silence-n_003 sox /c/_bg/n.wav -t wav - trim 3 1 |",
                                      "s1-no-00 /c/no/s1_nohash_0.wav", "s1-yes-00 /c/yes/s1_nohash_0.wav"])
    train = ["t1-yes-00", "noise00-silence-n_000"]
    wav = {"t1-yes-00": "/c/yes/t1_nohash_0.wav", "noise00-silence-n_000": "sox /c/_bg/n.wav -t wav - trim 0 1 |"}
    _write(d / "data/train/utt2spk", [f"{u} {u.split('-')[0]}" for u in train])
    _write(d / "data/train/wav.scp", [f"{u} {wav[u]}" for u in train])
    copies = [(p + u, p + u.split("-")[0], u) for p in ("sp0.9-", "sp1.0-", "noise-") for u in train]
    _write(d / "data/train_aug/utt2spk", [f"{c} {s}" for c, s, _ in copies])
    _write(d / "data/train_aug/utt2uniq", [f"{c} {u}" for c, _, u in copies])
    played = {u: w.split()[1] if "|" in w else w for u, w in wav.items()}  # (a noise copy plays the whole file)
    _write(d / "data/train_aug/wav.scp", [f"{c} sox {played[u]} -t wav - speed 0.9 |" for c, _, u in copies])
    _write(d / "data/train_aug/utt2noise", [f"noise-{u} sox /c/_bg/n.wav -t wav - trim 0 1 | 123 10" for u in train])
    _write(d / "data/noise_train/utt2spk", ["noise00-silence-n_000 noise00"])
    _write(d / "data/noise_train/wav.scp", [f"noise00-silence-n_000 {wav['noise00-silence-n_000']}"])
    return d


def test_a_clean_slice_has_no_leaks(tmp_path):
    assert ms.check_held_out(_slice_dir(tmp_path)) == []


def test_a_missing_slice_is_a_one_line_error_not_a_leak(tmp_path):
    with pytest.raises(SystemExit, match=r"slc/data/slice/utt2spk: no slice utterances; build the slice first"):
        ms.check_held_out(tmp_path / "slc")


def test_every_below_one_is_refused_before_anything_is_made(tmp_path):
    out = subprocess.run([sys.executable, str(RUN.parents[2] / "bench/make_slice.py"), "--slice-dir",
                          str(tmp_path / "slc"), "--every", "0", "--corpus", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.splitlines()[-1].endswith("error: --every 0: give a count >= 1")
    assert not (tmp_path / "slc").exists()


@pytest.mark.parametrize("name, line, what", [
    ("utt2spk", "x-1 t1", "is a slice clip"),  # with utt2uniq below: a copy under another id
    ("utt2spk", "sp1.1-s1-yes-00 sp1.1-s1", "is a slice clip"),  # a copy by its prefixed id
    ("utt2spk", "rev1-sp1.0-s1-go-00 rev1-sp1.0-s1", "slice speaker s1"),  # another clip of a slice speaker
    ("wav.scp", "t1-yes-00 sox /c/no/s1_nohash_0.wav -t wav - speed 1.1 |", "plays slice audio"),
    ("utt2noise", "noise-t1-yes-01 sox /c/_bg/n.wav -t wav - trim 3 1 | 400 5", "plays slice audio"),
])
def test_each_kind_of_leak_is_found(tmp_path, name, line, what):
    d = _slice_dir(tmp_path)
    with open(d / "data/train_aug" / name, "a") as f:
        f.write(line + "\n")
    if line.startswith("x-1"):
        with open(d / "data/train_aug/utt2uniq", "a") as f:
            f.write("x-1 s1-no-00\n")
    leaks = ms.check_held_out(d)
    assert len(leaks) == 1 and what in leaks[0] and "train_aug" in leaks[0], leaks


def test_run_sh_stage_0_holds_the_documented_slice_out(speech_commands_dir, tmp_path):
    work = tmp_path / "slc"
    listing = ms.choose_speakers(speech_commands_dir, work, 7)
    full = work / "data/local/all/train"
    out = subprocess.run(["bash", str(RUN), "--corpus", str(speech_commands_dir), "--augment", "false",
                          "--heldout-speakers", str(listing), "--stage", "0", "--stop-stage", "0", "--dir", str(work)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    held, train, every = (ms.read_table(p / "utt2spk") for p in (work / "data/heldout", work / "data/train_aug", full))
    speakers = ms.read_table(listing)
    # the slice of nnet2.conf's comment, built by hand then: 20 of the 140 speakers, 341 commands, 9 fillers, 22 noise
    assert len(speakers) == 20 and len(ms.read_table(full / "spk2utt")) == 140
    assert held == {u: s for u, s in every.items() if s in speakers}
    assert train == {u: s for u, s in every.items() if s not in speakers}
    shutil.copytree(work / "data/heldout", work / "data/slice")
    assert ms.summary(work).endswith("17 speakers + 3 noise pseudo-speakers, 372 utterances: 341 commands, 9 fillers, "
                                     "22 noise clips")
    assert len(ms.read_table(work / "data/noise_train/wav.scp")) == 152 - 22
    assert ms.check_held_out(work) == []


def test_a_duplicate_key_in_a_training_table_is_an_error_not_its_last_line(tmp_path):
    # read as a dict, the second line would hide the first one's leak: the check refuses the file at its line
    d = _slice_dir(tmp_path)
    with open(d / "data/train_aug/utt2noise", "w") as f:
        f.write("noise-t1-yes-00 sox /c/_bg/n.wav -t wav - trim 3 1 | 400 5\n"
                "noise-t1-yes-00 sox /c/_bg/n.wav -t wav - trim 0 1 | 123 10\n")
    with pytest.raises(InputError, match=r"train_aug/utt2noise:2: duplicate key noise-t1-yes-00"):
        ms.check_held_out(d)


def _trained_on(d, data_arg, dirs=("train_aug_hires", "train_aug_rvb_hires")):
    """A slice dir whose exp/nnet2 was trained by train-nnet2 on DATA_ARG (its log's first line, as the verb writes
    it), with feature dirs DIRS."""
    for name in dirs:
        _write(d / "data" / name / "feats.scp", [f"u1 {d}/mfcc/raw_{name}.1.ark:9"])
    _write(d / "exp/nnet2/log/train.log",
           [f"# kaldilite train-nnet2 --config /r/conf/nnet2.conf --online-cmvn true {data_arg} data/lang exp/tri3b_ali "
            "exp/nnet2", "2026-11-26 08:49:13,865 INFO (kaldilite.nnet.train) alignments from exp/tri3b_ali"])
    return d


@pytest.mark.parametrize("trained_on", ["data/train_aug_hires", "data/train_aug_rvb_hires"])
def test_the_dnn_data_link_follows_what_stage_8_trained_on_not_which_dir_exists(tmp_path, trained_on):
    # both dirs exist after any build with the reverberated copy (train_aug_hires is made first): the link is the
    # one train-nnet2 was given, also when it is not the first candidate
    d = _trained_on(tmp_path / "slc", trained_on)
    link = ms.link_dnn_data(d)
    assert link == d / "data/hires_train_aug_rev" and link.is_symlink()
    assert link.readlink() == Path(Path(trained_on).name) and link.resolve() == (d / trained_on).resolve()
    _trained_on(d, "data/train_aug_hires")  # a rebuild without the copy: the link moves
    assert ms.link_dnn_data(d).resolve() == (d / "data/train_aug_hires").resolve()


def test_the_dnn_data_link_refuses_a_missing_or_foreign_log_in_one_line(tmp_path):
    d = tmp_path / "slc"
    with pytest.raises(SystemExit, match=r"slc/exp/nnet2/log/train.log: missing; did run.sh's stage 8 train"):
        ms.link_dnn_data(d)
    _trained_on(d, "data/train_aug_rvb_hires", dirs=("train_aug_hires",))  # trained on a dir since removed
    with pytest.raises(SystemExit, match=r"train.log:1: exp/nnet2 trained on data/train_aug_rvb_hires, which has no "):
        ms.link_dnn_data(d)
    (d / "exp/nnet2/log/train.log").write_text("2026-11-26 08:49:13,865 INFO (kaldilite.nnet.train) ...\n")
    with pytest.raises(SystemExit, match=r"train.log:1: not a train-nnet2 command line"):
        ms.link_dnn_data(d)
    assert not (d / "data/hires_train_aug_rev").exists()


def test_num_speakers_chooses_the_slice_among_the_speakers_run_sh_keeps(speech_commands_dir, tmp_path):
    """make_slice --num-speakers: the slice is chosen among the speakers that run.sh --num-speakers keeps (before,
    it was chosen among all 140 and stage 0 refused an id it had not kept)."""
    work = tmp_path / "slc"
    listing = ms.choose_speakers(speech_commands_dir, work, 3, num_speakers=6)
    kept = ms.read_table(work / "data/local/all/train/utt2spk")
    speakers = ms.read_table(listing)
    assert len(set(kept.values())) == 6 + 1 and len(speakers) == 2  # 6 recorded speakers + noise00; every 3rd
    spaced = tmp_path / "held out" / "slice speakers.txt"  # (run.sh quotes the path: a space does not split it)
    spaced.parent.mkdir()
    shutil.copy(listing, spaced)
    out = subprocess.run(["bash", str(RUN), "--corpus", str(speech_commands_dir), "--augment", "false",
                          "--num-speakers", "6", "--heldout-speakers", str(spaced), "--stage", "0", "--stop-stage", "0",
                          "--dir", str(work)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert ms.read_table(work / "data/heldout/utt2spk") == {u: s for u, s in kept.items() if s in speakers}
    assert ms.read_table(work / "data/train/utt2spk") == {u: s for u, s in kept.items() if s not in speakers}
    with pytest.raises(SystemExit, match=r"--every 8 holds out none of its 7 speakers; give a smaller --every"):
        ms.choose_speakers(speech_commands_dir, work, 8, num_speakers=6)
