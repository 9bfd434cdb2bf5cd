"""make-denlats --model + train-nnet2-discriminative end to end, on the synthetic corpus of
tests/train/test_mmi_synthetic.py (3-phone HMMs emitting from correlated Gaussians): train-mono,
align, train-nnet2 on the alignments, mkgraph of a word loop, make-denlats with the DNN, then MMI
and sMBR training through the CLI.

Known answers: the held-out objective logged before training and after each epoch rises for
both criteria (MMI from below 0, sMBR an expected frame accuracy in [0, 1]); the written model is
an nnet2 model with the source's tree, priors and feature pipeline and other weights, which
decodes unseen utterances of the generating model with fewer word errors than its start (the
small, briefly trained start makes 376 errors in 789 words, MMI 264, sMBR 274); a
missing lattice dir is refused with one line naming it.

Padded copies (add-noise-data-dir --pad-range, DATA/utt2pad; the ali dir aligned only the unpadded clips):
make-denlats --model decodes the padded features, so each lattice covers the padded length, and the
numerator is the source's transition-ids with the pauses' frames (hand-picked counts) on the optional
silence's self-loop the alignments hold most (counted here), train-nnet2's target; before this the
padded copies were dropped with a warning (alignment shorter than the features).

Augmented copies (train-nnet2 --copy-ali-prefixes): on a data dir whose `noise-<utt>` copies carry an
alignment of their own in the ali dir (deliberately another one: their source's reversed), the numerator
of each copy is exactly its source's transition-ids when SRC_MODEL was trained with the prefixes (the
recorded option) or when the option is given, and its own without; training with the recorded option
gives the same network as with the option given. An alignment holding a transition-id beyond the
model's is refused with one line naming the ali file.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli


def _mmi_corpus():
    path = Path(__file__).parents[1] / "train" / "test_mmi_synthetic.py"
    if str(path.parent) not in sys.path:  # it imports its sibling helper module synthetic_setup
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("_nnet_disc_mmi_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.align import align_si
    from kaldilite.train.mono import MonoOptions, train_mono

    corpus = _mmi_corpus()
    import synthetic_setup

    tmp = tmp_path_factory.mktemp("nnet_disc")
    lang = synthetic_setup.make_lang(tmp, corpus.LEXICON)
    feats, text = corpus.sample_corpus(np.random.default_rng(corpus.SEED))
    train = sorted(feats)[:corpus.TRAIN_UTTS]
    synthetic_setup.write_data_dir(tmp / "data", {u: feats[u] for u in train}, text)
    train_mono(tmp / "data", lang, tmp / "mono", MonoOptions(nj=1, num_iters=6, max_iter_inc=3, totgauss=18,
                                                            realign_iters=(1, 2, 3, 4)),
               pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    align_si(tmp / "data", lang, tmp / "mono", tmp / "mono_ali", nj=1)
    loop = synthetic_setup.word_loop_lang(lang, corpus.LEXICON, tmp / "lang_loop")
    runner = CliRunner()
    graph = tmp / "mono" / "graph_loop"
    outputs = {}
    for name, args in (("mkgraph", ["mkgraph", str(loop), str(tmp / "mono"), str(graph)]),
                       ("nnet", ["train-nnet2", "--num-epochs", "3", "--samples-per-iter", "2000",
                                 "--pnorm-input-dim", "100", "--pnorm-output-dim", "20", "--num-utts-subset", "10",
                                 "--splice-width", "2", "--seed", "1", str(tmp / "data"), str(lang),
                                 str(tmp / "mono_ali"), str(tmp / "nnet2")]),
                       ("denlats", ["make-denlats", "--nj", "1", "--model", str(tmp / "nnet2" / "final.mdl"),
                                    str(tmp / "data"), str(lang), str(graph), str(tmp / "mono_ali"),
                                    str(tmp / "denlats")]),
                       ("mmi", ["train-nnet2-discriminative", "--num-epochs", "2", "--learning-rate", "1e-3",
                                "--update", "rms", "--momentum", "0.9", "--num-utts-subset", "20",
                                "--frames-per-minibatch", "200", str(tmp / "data"), str(lang), str(tmp / "mono_ali"),
                                str(tmp / "denlats"), str(tmp / "nnet2" / "final.mdl"), str(tmp / "nnet2_mmi")]),
                       ("smbr", ["train-nnet2-discriminative", "--criterion", "smbr", "--num-epochs", "2",
                                 "--learning-rate", "1e-3", "--update", "rms", "--momentum", "0.9",
                                 "--num-utts-subset", "20", "--frames-per-minibatch", "200", str(tmp / "data"),
                                 str(lang), str(tmp / "mono_ali"), str(tmp / "denlats"),
                                 str(tmp / "nnet2" / "final.mdl"), str(tmp / "nnet2_smbr")])):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (name, result.output)
        outputs[name] = result.output
    test = sorted(feats)[corpus.TRAIN_UTTS:]
    return {"tmp": tmp, "lang": lang, "graph": graph, "outputs": outputs, "feats": {u: feats[u] for u in test},
            "text": {u: text[u] for u in test}}


def _objectives(output):
    line = next(x for x in output.splitlines() if x.startswith("train-nnet2-discriminative: done"))
    return [float(v) for v in line.split("by epoch: ")[1].split(" -> ")[0].split()]


@pytest.mark.parametrize("criterion", ["mmi", "smbr"])
def test_the_held_out_objective_rises_every_epoch(system, criterion):
    objf = _objectives(system["outputs"][criterion])
    assert len(objf) == 3
    assert all(later > earlier for earlier, later in zip(objf, objf[1:])), objf
    if criterion == "mmi":
        assert objf[-1] < 0.0
    else:
        assert 0.0 < objf[0] < objf[-1] <= 1.0


def test_the_model_is_the_source_with_new_weights_and_decodes_better(system):
    from kaldilite.decode.batch import decode_utterances
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.nnet.model import load_nnet_model
    from kaldilite.score.wer import compute_wer

    tmp = system["tmp"]
    source = load_nnet_model(tmp / "nnet2" / "final.mdl")
    errors = {}
    for name in ("nnet2", "nnet2_mmi", "nnet2_smbr"):
        model = load_nnet_model(tmp / name / "final.mdl")
        assert (tmp / name / "tree").read_bytes() == (tmp / "mono_ali" / "tree").read_bytes()
        np.testing.assert_array_equal(model.priors, source.priors)
        assert model.pipeline == source.pipeline and model.prior_scale == source.prior_scale
        if name != "nnet2":
            assert not np.allclose(model.nnet.output_affine.weight, source.nnet.output_affine.weight)
            assert model.extra["discriminative"]["criterion"] == name.split("_")[1]
        words = SymbolTable.read(system["graph"] / "words.txt")
        feats = {u: model.pipeline.apply(f) for u, f in system["feats"].items()}
        results = decode_utterances(load_graph(system["graph"]), model.tm.tid_to_pdf, model.log_likelihoods,
                                    sorted(feats.items()), DecoderOptions(beam=15.0, acoustic_scale=0.1))
        hyps = {u: " ".join(words.symbol(w) for w in r.words) for u, r in results}
        errors[name] = compute_wer(dict(sorted(system["text"].items())), hyps).errors
    # the small network starts poor (376 errors in 789 words); both criteria fix many (264, 274)
    assert errors["nnet2_mmi"] < 0.85 * errors["nnet2"] and errors["nnet2_smbr"] < 0.85 * errors["nnet2"], errors


def test_a_missing_lattice_dir_is_refused_with_one_line(system, tmp_path):
    tmp = system["tmp"]
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["train-nnet2-discriminative", str(tmp / "data"), str(system["lang"]),
                                      str(tmp / "mono_ali"), str(tmp_path / "empty"),
                                      str(tmp / "nnet2" / "final.mdl"), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "no denlat.*.npz" in str(result.exception) and "make-denlats --model" in str(result.exception)


COPIES = 20  # noise-<utt> copies of the first training utterances


@pytest.fixture(scope="module")
def copied(system):
    """An augmented data dir, ali dir and denlat dir, and SRC_MODEL re-saved as if trained with 'noise-'."""
    from kaldilite.decode.denlat import load_den_lattices, save_den_lattices
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import read_alignment_dir, read_matrix_dict, write_int_vectors, write_matrices
    from kaldilite.nnet.model import load_nnet_model, save_nnet_model

    tmp = system["tmp"]
    out = tmp / "copied"
    data, ali, den = out / "data", out / "ali", out / "denlats"
    for d in (data, ali, den):
        d.mkdir(parents=True)
    feats = read_matrix_dict(f"scp:{tmp / 'data' / 'feats.scp'}")
    alis = read_alignment_dir(tmp / "mono_ali")
    lats = {}
    for path in sorted((tmp / "denlats").glob("denlat.*.npz")):
        lats.update(load_den_lattices(path))
    sources = sorted(u for u in feats if u in alis and u in lats)[:COPIES]
    rng = np.random.default_rng(3)
    for u in sources:
        feats["noise-" + u] = feats[u] + rng.normal(scale=0.1, size=feats[u].shape).astype(np.float32)
        alis["noise-" + u] = alis[u][::-1].copy()  # what a GMM aligning the copy might make of it: not its source's
        lats["noise-" + u] = lats[u]
    utts = sorted(feats)
    DataDir(utt2spk={u: u for u in utts}).save(data)  # save() first: it removes the files it does not hold
    write_matrices([(u, feats[u]) for u in utts], data / "feats.ark", data / "feats.scp")
    (data / "utt2uniq").write_text("".join(f"{u} {u.removeprefix('noise-')}\n" for u in utts))
    for name in ("final.mdl", "tree"):
        (ali / name).write_bytes((tmp / "mono_ali" / name).read_bytes())
    write_int_vectors(sorted(alis.items()), str(ali / "ali.1.gz"))
    save_den_lattices(sorted(lats.items()), den / "denlat.1.npz")
    model = load_nnet_model(tmp / "nnet2" / "final.mdl")
    model.extra["options"] = dict(model.extra["options"], copy_ali_prefixes="noise-")
    save_nnet_model(out / "prefixed.mdl", model)
    return {"data": data, "lang": system["lang"], "ali": ali, "den": den, "model": out / "prefixed.mdl",
            "sources": sources, "alis": alis}


def test_copies_take_their_sources_numerator_as_the_model_was_trained(copied):
    from kaldilite.nnet.model import load_nnet_model
    from kaldilite.train.nnet_discriminative import _Utterances

    model = load_nnet_model(copied["model"])
    by_utt = {}
    for prefixes in (None, ""):  # None: the recorded 'noise-'; "": none (each copy keeps its own)
        data = _Utterances(model, copied["data"], copied["lang"], copied["ali"], copied["den"], prefixes)
        by_utt[prefixes] = dict(zip(data.utts, data.alis))
        assert len(data.utts) == 160 + COPIES
    for u in copied["sources"]:
        assert by_utt[None]["noise-" + u].tolist() == copied["alis"][u].tolist()
        assert by_utt[""]["noise-" + u].tolist() == copied["alis"][u][::-1].tolist()
        assert by_utt[None][u].tolist() == by_utt[""][u].tolist() == copied["alis"][u].tolist()


def test_a_copy_prefixed_data_dir_trains_as_the_model_was_trained(copied, tmp_path, system):
    from kaldilite.nnet.model import load_nnet_model

    weights = {}
    for name, extra in (("recorded", []), ("given", ["--copy-ali-prefixes", "noise-"]),
                        ("none", ["--copy-ali-prefixes", ""])):
        result = CliRunner().invoke(cli, ["train-nnet2-discriminative", "--num-epochs", "1", "--learning-rate", "1e-3",
                                          "--update", "rms", "--num-utts-subset", "0", *extra, str(copied["data"]),
                                          str(system["lang"]), str(copied["ali"]), str(copied["den"]),
                                          str(copied["model"]), str(tmp_path / name)])
        assert result.exit_code == 0, (name, result.output, result.exception)
        weights[name] = load_nnet_model(tmp_path / name / "final.mdl").nnet.output_affine.weight
    np.testing.assert_array_equal(weights["recorded"], weights["given"])
    assert not np.allclose(weights["recorded"], weights["none"])


def test_an_alignment_of_another_model_is_refused_with_one_line(copied, tmp_path, system):
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.nnet.model import load_nnet_model

    ali = tmp_path / "ali"
    ali.mkdir()
    for name in ("final.mdl", "tree"):
        (ali / name).write_bytes((copied["ali"] / name).read_bytes())
    num_tids = load_nnet_model(copied["model"]).tm.num_transition_ids
    alis = dict(copied["alis"])
    utt = copied["sources"][3]
    alis[utt] = alis[utt].copy()
    alis[utt][5] = num_tids + 1  # a transition-id the model does not have
    write_int_vectors(sorted(alis.items()), str(ali / "ali.1.gz"))
    result = CliRunner().invoke(cli, ["train-nnet2-discriminative", str(copied["data"]), str(system["lang"]),
                                      str(ali), str(copied["den"]), str(copied["model"]), str(tmp_path / "out")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "\n" not in message and message.startswith(f"{ali / 'ali.1.gz'}: utterance {utt} has transition-ids")
    assert f"outside the model's 1..{num_tids}" in message and "another model" in message


PADS = {0: (3, 5), 1: (0, 7), 2: (4, 0)}  # source index -> pause frames (before, after) of its pad-<utt> copy


def test_padded_copies_get_the_extended_numerator_and_lattices_of_their_length(system, tmp_path):
    from kaldilite.decode.denlat import load_den_lattices
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import read_alignment_dir, read_matrix_dict, write_matrices
    from kaldilite.lang.langdir import read_phone_list
    from kaldilite.nnet.model import load_nnet_model
    from kaldilite.train.nnet_discriminative import _Utterances

    tmp = system["tmp"]
    feats = read_matrix_dict(f"scp:{tmp / 'data' / 'feats.scp'}")
    alis = read_alignment_dir(tmp / "mono_ali")
    sources = sorted(u for u in feats if u in alis)[:len(PADS)]
    data = tmp_path / "data"
    data.mkdir()
    chosen = {}
    for i, u in enumerate(sources):
        before, after = PADS[i]
        pause = np.repeat(feats[u][:1], before + after, axis=0)  # the clip's first frame (no word there)
        chosen[u], chosen["pad-" + u] = feats[u], np.concatenate([pause[:before], feats[u], pause[before:]])
    utts = sorted(chosen)
    DataDir(utt2spk={u: u for u in utts}).save(data)
    write_matrices([(u, chosen[u]) for u in utts], data / "feats.ark", data / "feats.scp")
    (data / "utt2uniq").write_text("".join(f"{u} {u.removeprefix('pad-')}\n" for u in utts))
    (data / "utt2pad").write_text("".join(f"pad-{u} {PADS[i][0] * 0.01:.2f} {PADS[i][1] * 0.01:.2f}\n"
                                          for i, u in enumerate(sources)))
    model_path = tmp / "nnet2" / "final.mdl"
    result = CliRunner().invoke(cli, ["make-denlats", "--nj", "1", "--model", str(model_path), str(data),
                                      str(system["lang"]), str(system["graph"]), str(tmp / "mono_ali"),
                                      str(tmp_path / "den")])
    assert result.exit_code == 0, result.output
    lattices = {}
    for path in sorted((tmp_path / "den").glob("denlat.*.npz")):
        lattices.update(load_den_lattices(path))
    model = load_nnet_model(model_path)
    tm = model.tm
    # by hand: the optional silence's self-loop transition-id the ali dir's alignments hold most (lowest on a tie)
    optional = read_phone_list(system["lang"] / "phones" / "optional_silence.int", "")[0]
    loops = [t for t in range(1, len(tm.tid_to_pdf)) if tm.tid_to_phone[t] == optional and tm.tid_is_self_loop[t]]
    counts = {t: sum(int((a == t).sum()) for a in alis.values()) for t in loops}
    silence = max(loops, key=lambda t: (counts[t], -t))
    got = _Utterances(model, data, system["lang"], tmp / "mono_ali", tmp_path / "den")
    numerators = dict(zip(got.utts, got.alis))
    assert sorted(numerators) == utts
    for i, u in enumerate(sources):
        before, after = PADS[i]
        assert lattices["pad-" + u].num_frames == before + len(feats[u]) + after == len(chosen["pad-" + u])
        expected = [silence] * before + alis[u].tolist() + [silence] * after
        assert numerators["pad-" + u].tolist() == expected
        assert numerators[u].tolist() == alis[u].tolist()
