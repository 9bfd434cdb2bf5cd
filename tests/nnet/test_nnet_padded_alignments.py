"""train-nnet2's targets for padded clips (add-noise-data-dir --pad-range): the unpadded copy's alignment
with the pauses put on the optional silence, checked against a GMM's own alignment of the padded audio.

Real speech: the digits recipe's FSDD monophone system (the `digits_system` fixture, read only). Eight
training clips get a noise copy at 40 dB (Speech Commands room noise) and a padded one (the same noise
running on through 0.3-0.8 s pauses on both sides); the GMM aligns both, the padded clips normalized
by their unpadded copies' CMVN stats (per-speaker stats over a 2-clip speaker with ~1 s of pauses move
the word's features: a CMVN effect, not an alignment one). The extension of the noise copy's alignment
must agree with the GMM's alignment of the padded clip on the word's frames (the phone of >= 90% of
them: Viterbi moves a boundary by a frame or two where the clip's edges changed; 97% here), and the GMM
must put the pauses on silence (>= 90% of their frames; 99% here). At 20 dB this clean-trained
monophone aligns 36% of the pauses to fricatives (the word's phones stretched into the noise), the
reason the pauses are not forced-aligned. Hand-checked on the same model: every pause frame is the
optional silence's self-loop transition-id the alignments hold most (counted here); a bad utt2pad line
is a one-line error naming file and line.
"""

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.corpora.augment import add_noise_data_dir
from kaldilite.errors import InputError
from kaldilite.gmm.model import load_model
from kaldilite.io.datadir import DataDir, read_key_values
from kaldilite.lang.langdir import read_phone_list
from kaldilite.nnet.train import padded_alignments, read_tid_alignments

MFCC_CONF = "recipes/digits/conf/mfcc.conf"


def _utts(digits_system, n=8):
    data = DataDir.load(digits_system / "data/train")
    picked = sorted(data.wav_scp)[::max(1, len(data.wav_scp) // n)][:n]
    return {u: data.wav_scp[u] for u in picked}, {u: data.text[u] for u in picked}, {u: data.utt2spk[u] for u in picked}


def _align(runner, data, digits_system, out, repo, cmvn_of=None):
    """Features, CMVN stats (those of `cmvn_of`'s speakers, `pad-` before their ids, if given) and the
    mono alignment of DATA."""
    for args in (["make-mfcc", "--config", str(repo / MFCC_CONF), "--nj", "1", str(data), str(out / "log"),
                  str(out / "mfcc")],
                 ["compute-cmvn-stats", str(data), str(out / "log"), str(out / "mfcc")],
                 ["align", "--nj", "1", str(data), str(digits_system / "data/lang"), str(digits_system / "exp/mono"),
                  str(out / "ali")]):
        if args[0] == "align" and cmvn_of is not None:
            stats = read_key_values(cmvn_of / "cmvn.scp")
            (data / "cmvn.scp").write_text("".join(f"pad-{spk} {value}\n" for spk, value in sorted(stats.items())))
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args[0], result.output, result.exception)


@pytest.fixture(scope="module")
def aligned(digits_system, speech_commands_dir, tmp_path_factory):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path_factory.mktemp("padded")
    wav_scp, text, utt2spk = _utts(digits_system)
    DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk).save(root / "src")
    noise = root / "noise.list"
    quiet = sorted((speech_commands_dir / "_background_noise_").glob("*.wav"))[:40]
    noise.write_text("".join(f"{p}\n" for p in quiet))
    plain = add_noise_data_dir(root / "src", root / "noise", noise, snrs=(40.0,), utt_prefix="noise")
    padded = add_noise_data_dir(root / "src", root / "pad", noise, snrs=(40.0,), utt_prefix="pad-noise",
                                pad_range=(0.3, 0.8), pad_probability=1.0)
    runner = CliRunner()
    _align(runner, plain, digits_system, root / "noise_exp", repo)
    _align(runner, padded, digits_system, root / "pad_exp", repo, cmvn_of=plain)
    tm = load_model(digits_system / "exp/mono/final.mdl")[0]
    n = len(tm.tid_to_pdf) - 1
    return (tm, padded, read_tid_alignments(root / "noise_exp/ali", n), read_tid_alignments(root / "pad_exp/ali", n))


def test_extended_alignment_agrees_with_the_gmms_alignment_of_the_padded_clip(aligned, digits_system):
    tm, padded, plain_alis, own_alis = aligned
    extended = padded_alignments(padded, digits_system / "data/lang", tm, plain_alis)
    pads = read_key_values(padded / "utt2pad")
    silence = read_phone_list(digits_system / "data/lang/phones/silence.int", "")
    assert set(extended) == set(own_alis) == set(pads) and len(pads) == 8
    word_agree = word_total = pause_silent = pause_total = 0
    for utt, tids in extended.items():
        before, after = (int(round(float(x) * 100)) for x in pads[utt].split())
        source = plain_alis["noise-" + utt[len("pad-noise-"):]]
        assert len(tids) == len(own_alis[utt]) == before + len(source) + after  # the padded clip's frames
        assert np.array_equal(tids[before:before + len(source)], source)
        ours, gmm = tm.tid_to_phone[tids], tm.tid_to_phone[own_alis[utt]]
        word = slice(before, before + len(source))
        word_agree += int((ours[word] == gmm[word]).sum())
        word_total += len(source)
        pauses = np.r_[0:before, before + len(source):len(tids)]
        pause_silent += int(np.isin(gmm[pauses], silence).sum())
        pause_total += len(pauses)
    assert word_agree >= 0.9 * word_total, (word_agree, word_total)
    assert pause_silent >= 0.9 * pause_total, (pause_silent, pause_total)


def test_pause_frames_are_the_optional_silences_commonest_self_loop(aligned, digits_system, tmp_path):
    tm, _, plain_alis, _ = aligned
    data = tmp_path / "data"
    data.mkdir()
    utt = sorted(plain_alis)[0]
    (data / "utt2pad").write_text(f"pad-{utt} 0.23 0.07\n")
    got = padded_alignments(data, digits_system / "data/lang", tm, plain_alis)[f"pad-{utt}"]
    optional = read_phone_list(digits_system / "data/lang/phones/optional_silence.int", "")[0]
    # by hand: count the optional silence's self-loop transition-ids over all the alignments given
    counts = {}
    for tids in plain_alis.values():
        for tid in tids:
            if tm.tid_to_phone[tid] == optional and tm.tid_is_self_loop[tid]:
                counts[int(tid)] = counts.get(int(tid), 0) + 1
    commonest = max(counts, key=counts.get)
    assert np.array_equal(got[23:-7], plain_alis[utt])
    assert got[:23].tolist() == [commonest] * 23 and got[-7:].tolist() == [commonest] * 7
    (data / "utt2pad").write_text(f"pad-{utt} 0.23\n")
    with pytest.raises(InputError, match=r"utt2pad:1: .*'<utt> <before> <after>'") as err:
        padded_alignments(data, digits_system / "data/lang", tm, plain_alis)
    assert "\n" not in str(err.value)


def test_a_padded_clip_the_alignments_hold_keeps_its_own_alignment(aligned, digits_system):
    """Alignments of the padded clips themselves (the GMM aligned them): already their length, pauses
    included, so they are kept; extending them again made every one too long for its features (skipped)."""
    tm, padded, plain_alis, own_alis = aligned
    got = padded_alignments(padded, digits_system / "data/lang", tm, {**plain_alis, **own_alis})
    assert set(got) == set(own_alis) and len(got) == 8
    for utt, tids in got.items():
        assert np.array_equal(tids, own_alis[utt]), utt


def test_utt2pad_errors_name_the_line_of_the_file(aligned, digits_system, tmp_path):
    """The line number is the file's (an unsorted file with a blank line; ids sorted put the bad line
    first), and 'inf' is the same one-line error (it was an OverflowError traceback); so are numbers
    Kaldi's ConvertStringToReal refuses ('1_0', Arabic-Indic 3, nan), which float() read as 10 s and 3 s."""
    tm, _, plain_alis, _ = aligned
    utt = sorted(plain_alis)[0]
    data = tmp_path / "data"
    data.mkdir()
    for text, line in ((f"pad-z{utt} 0.1 0.2\n\npad-a{utt} 0.1\n", 3), (f"pad-{utt} 0.1 0.1\npad-{utt}x inf 0\n", 2),
                       (f"pad-{utt} 0.1 1_0\n", 1), (f"pad-{utt} \u0663 0\n", 1), (f"pad-{utt} 0 nan\n", 1)):
        (data / "utt2pad").write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=rf"utt2pad:{line}: .*'<utt> <before> <after>'") as err:
            padded_alignments(data, digits_system / "data/lang", tm, plain_alis)
        assert "\n" not in str(err.value)


def test_pauses_are_counted_in_frames_of_the_data_dirs_frame_shift(aligned, digits_system, tmp_path):
    """DATA/frame_shift 0.015 (make-mfcc with --frame-shift=15): '0.045 0.030' is 3 + 2 frames (by hand),
    not the 4.5 + 3 of 10 ms frames; pauses that are not whole frames of the recorded shift (a 10 ms
    padding, 0.37 s, under 15 ms features; 15 ms pauses under no frame_shift file, Kaldi's 0.01) are
    one-line errors naming the line, the shift's source and the add-noise-data-dir option that fixes them."""
    tm, _, plain_alis, _ = aligned
    utt = sorted(plain_alis)[0]
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2pad").write_text(f"pad-{utt} 0.045 0.030\n")
    lang = digits_system / "data/lang"
    with pytest.raises(InputError, match=r"utt2pad:1: .*not whole frames of 0.01 s \(Kaldi's default: no .*"
                                         r"frame_shift\); .*add-noise-data-dir --frame-shift 10 ") as err:
        padded_alignments(data, lang, tm, plain_alis)
    assert "\n" not in str(err.value)
    (data / "frame_shift").write_text("0.015\n")
    got = padded_alignments(data, lang, tm, plain_alis)[f"pad-{utt}"]
    source = plain_alis[utt]
    assert len(got) == 3 + len(source) + 2 and np.array_equal(got[3:-2], source)
    assert len(set(got[:3].tolist() + got[-2:].tolist())) == 1 and tm.tid_is_self_loop[got[0]]
    (data / "utt2pad").write_text(f"pad-{utt} 0.045 0.030\npad-x{utt} 0.37 0.00\n")
    with pytest.raises(InputError, match=rf"utt2pad:2: 'pad-x{utt} 0.37 0.00': the pauses are not whole frames of "
                                         rf"0.015 s \({data / 'frame_shift'}\); .*--frame-shift 15 ") as err:
        padded_alignments(data, lang, tm, plain_alis)
    assert "\n" not in str(err.value)
