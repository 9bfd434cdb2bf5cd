"""train-nnet2 --copy-ali-prefixes (steps/copy_ali_dir.sh's practice), against a hand-built data dir + ali dir.

The ali dir aligns every utterance, the noise copies too (as the recipe's GMM aligns train_aug), each
copy with a deliberately different alignment of its own. With 'noise-=sp1.0-' each `noise-<utt>` must
train on exactly the pdfs of `sp1.0-<utt>`'s transition-ids as written in ali.1.gz (not its own, and
not the speed-perturbed copies' of the same recording); everything else keeps its own. A copy whose
length is not its source's is a one-line error naming the utterance; prefixes that pair copies of two
different recordings (utt2uniq) are refused; the verb passes the option through.
"""

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.io.tables import write_int_vectors
from kaldilite.nnet.train import Nnet2Options, load_examples, parse_copy_ali_prefixes, read_pdf_alignments

# transition-id -> pdf (index 0 unused, as in a transition model)
TID_TO_PDF = np.array([-1, 0, 0, 1, 1, 2, 2, 3, 3])
CLEAN = {"sp1.0-a-go-00": [1, 2, 3, 4, 4, 5], "sp1.0-b-up-01": [7, 8, 8, 6]}
PERTURBED = {"sp0.9-a-go-00": [1, 1, 3, 3, 4, 5, 6], "sp0.9-b-up-01": [7, 7, 8, 8, 6]}
OWN_NOISY = {"noise-a-go-00": [5, 5, 6, 6, 1, 2], "noise-b-up-01": [1, 3, 5, 7]}  # what tri3b made of them


def build(tmp_path, noisy_alignments=OWN_NOISY):
    data, ali = tmp_path / "data", tmp_path / "ali"
    data.mkdir()
    ali.mkdir()
    alignments = {**CLEAN, **PERTURBED, **noisy_alignments}
    write_int_vectors(sorted((u, np.array(t)) for u, t in alignments.items()), str(ali / "ali.1.gz"))
    (data / "utt2uniq").write_text("".join(f"{u} {u.split('-', 1)[1]}\n" for u in sorted(alignments)))
    rng = np.random.default_rng(0)
    lengths = {**{u: len(t) for u, t in alignments.items()}, **{u: len(CLEAN["sp1.0-" + u[6:]]) for u in OWN_NOISY}}
    features = [(u, rng.standard_normal((n, 3)).astype(np.float32)) for u, n in sorted(lengths.items())]
    return data, read_pdf_alignments(ali, TID_TO_PDF), features


def targets_by_utt(result):
    utts, _, targets, offsets = result
    return {u: targets[offsets[i]:offsets[i + 1]].tolist() for i, u in enumerate(utts)}


def test_noise_copies_train_on_their_clean_copys_transition_ids(tmp_path):
    data, pdf_alis, features = build(tmp_path)
    got = targets_by_utt(load_examples(data, None, pdf_alis, features, parse_copy_ali_prefixes("noise-=sp1.0-")))
    assert got["noise-a-go-00"] == TID_TO_PDF[CLEAN["sp1.0-a-go-00"]].tolist() == [0, 0, 1, 1, 1, 2]
    assert got["noise-b-up-01"] == TID_TO_PDF[CLEAN["sp1.0-b-up-01"]].tolist() == [3, 3, 3, 2]
    for utt, tids in {**CLEAN, **PERTURBED}.items():
        assert got[utt] == TID_TO_PDF[tids].tolist()
    # without the option each copy keeps the alignment the ali dir gives it
    own = targets_by_utt(load_examples(data, None, pdf_alis, features))
    assert own["noise-a-go-00"] == TID_TO_PDF[OWN_NOISY["noise-a-go-00"]].tolist() == [2, 2, 2, 2, 0, 0]


def test_copies_the_ali_dir_lacks_still_get_their_source(tmp_path):
    data, pdf_alis, features = build(tmp_path, noisy_alignments={})  # Kaldi's way: only clean data aligned
    got = targets_by_utt(load_examples(data, None, pdf_alis, features, parse_copy_ali_prefixes("noise-=sp1.0-")))
    assert got["noise-b-up-01"] == [3, 3, 3, 2]
    assert set(got) == set(CLEAN) | set(PERTURBED) | set(OWN_NOISY)


def test_a_copy_of_another_length_is_an_error_naming_it(tmp_path):
    data, pdf_alis, features = build(tmp_path)
    # 'noise-=sp0.9-' pairs each noise copy with a speed-perturbed one: same recording, other timing
    with pytest.raises(InputError) as err:
        load_examples(data, None, pdf_alis, features, parse_copy_ali_prefixes("noise-=sp0.9-"))
    message = str(err.value)
    assert "\n" not in message and "noise-a-go-00 has 6 frames but sp0.9-a-go-00" in message and "has 7" in message


def test_prefixes_pairing_two_recordings_are_refused(tmp_path):
    data, pdf_alis, features = build(tmp_path)
    uniq = (data / "utt2uniq").read_text()
    (data / "utt2uniq").write_text(uniq.replace("noise-b-up-01 b-up-01", "noise-b-up-01 c-no-02"))
    with pytest.raises(InputError, match="noise-b-up-01 the alignment of sp1.0-b-up-01.*different recordings"):
        load_examples(data, None, pdf_alis, features, parse_copy_ali_prefixes("noise-=sp1.0-"))


def test_prefix_spec_parsing():
    assert parse_copy_ali_prefixes("noise-=sp1.0- rev1-") == (("noise-", "sp1.0-"), ("rev1-", ""))
    assert parse_copy_ali_prefixes("") == ()
    for bad in ("=sp1.0-", "a-=a-"):
        with pytest.raises(InputError, match="--copy-ali-prefixes"):
            Nnet2Options(copy_ali_prefixes=bad)


def test_verb_passes_the_option_to_training(tmp_path, monkeypatch):
    import kaldilite.nnet.train as train
    from kaldilite.cli import cli

    seen = {}

    def fake_train(data, lang, ali_dir, exp, opts, realigner=None):
        seen["pairs"] = opts.copy_ali_prefix_pairs()
        raise InputError("stop here")

    monkeypatch.setattr(train, "train_nnet2", fake_train)
    for name in ("data", "lang", "ali"):
        (tmp_path / name).mkdir()
    result = CliRunner().invoke(cli, ["train-nnet2", "--copy-ali-prefixes", "noise-=sp1.0-", str(tmp_path / "data"),
                                      str(tmp_path / "lang"), str(tmp_path / "ali"), str(tmp_path / "exp")])
    assert seen["pairs"] == (("noise-", "sp1.0-"),), result.output


def test_copies_whose_source_is_not_aligned_are_skipped_with_a_warning(tmp_path, caplog):
    data, pdf_alis, features = build(tmp_path)
    with caplog.at_level("WARNING", logger="kaldilite.nnet.train"):
        got = targets_by_utt(load_examples(data, None, pdf_alis, features, parse_copy_ali_prefixes("noise-=sp1.1-")))
    assert set(got) == set(CLEAN) | set(PERTURBED)  # never the copy's own alignment instead
    assert "2 utterances skipped: --copy-ali-prefixes names a source the alignments lack" in caplog.text
