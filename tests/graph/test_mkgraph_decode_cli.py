"""`kaldilite mkgraph` + `kaldilite decode` end to end on features sampled from a known model.

The acoustic model is one well-separated Gaussian per pdf; each utterance's features are
drawn along a random word sequence / silence / HMM path of the tiny lang. Decoding must give
back the words that generated them (the generating model is the independent answer).
"""

import numpy as np
from click.testing import CliRunner

from graph_fixtures import LEXICON, WORD_PROBS, make_tiny_lang, make_tiny_model, random_phone_tids
from kaldilite.cli import cli
from kaldilite.feat.pipeline import FeaturePipeline
from kaldilite.gmm.am import AmDiagGmm
from kaldilite.gmm.model import save_model
from kaldilite.io.tables import write_matrices

DIM = 4
PHONE_IDS = {"a": 2, "b": 3, "c": 4}


def make_model(exp, tree, tm, rng):
    means = rng.normal(0.0, 4.0, size=(tm.num_pdfs, DIM))
    am = AmDiagGmm(means, np.ones((tm.num_pdfs, DIM)), np.zeros(tm.num_pdfs), np.arange(tm.num_pdfs + 1))
    exp.mkdir(parents=True)
    save_model(exp / "final.mdl", tm, am, FeaturePipeline(cmvn="none"))
    tree.write(exp / "tree")
    return am


def make_data(data, tree, tm, am, rng, num_utts=24):
    data.mkdir(parents=True)
    texts, feats = {}, []
    words = list(WORD_PROBS)
    for i in range(num_utts):
        speaker = f"spk{i % 3}"
        utt = f"{speaker}-u{i:03d}"
        chosen = list(rng.choice(words, size=int(rng.integers(1, 4))))
        phones = [1] if rng.random() < 0.5 else []
        for w in chosen:
            phones += [PHONE_IDS[p] for p in LEXICON[w]] + ([1] if rng.random() < 0.5 else [])
        tids = [t for p in phones for t in random_phone_tids(tm, tree, p, rng)]
        pdfs = tm.tid_to_pdf[tids]
        feats.append((utt, (am.means[pdfs] + rng.normal(0, 1.0, size=(len(pdfs), DIM))).astype(np.float32)))
        texts[utt] = " ".join(chosen)
    feats.sort()
    write_matrices(feats, str(data / "feats.ark"), str(data / "feats.scp"))
    utts = sorted(texts)
    (data / "text").write_text("".join(f"{u} {texts[u]}\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    speakers = sorted({u.split("-")[0] for u in utts})
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if u.startswith(s + '-'))}\n"
                                          for s in speakers))
    return texts


def test_mkgraph_and_decode_recover_the_generating_words(tmp_path):
    rng = np.random.default_rng(11)
    lang = make_tiny_lang(tmp_path / "lang")
    tree, tm = make_tiny_model()
    am = make_model(tmp_path / "exp", tree, tm, rng)
    texts = make_data(tmp_path / "data", tree, tm, am, rng)
    runner = CliRunner()
    result = runner.invoke(cli, ["mkgraph", str(lang.path), str(tmp_path / "exp"), str(tmp_path / "exp" / "graph")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exp" / "graph" / "HCLG.fst").is_file()
    result = runner.invoke(cli, ["decode", "--nj", "2", "--acwt", "0.1", str(tmp_path / "exp" / "graph"),
                                 str(tmp_path / "data"), str(tmp_path / "exp" / "decode")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    hyps = dict(line.split(" ", 1) for line in (tmp_path / "exp" / "decode" / "hyp.txt").read_text().splitlines())
    assert hyps == texts
    num_words = sum(len(t.split()) for t in texts.values())
    assert f"%WER 0.00 [ 0 / {num_words}, 0 ins, 0 del, 0 sub ]" in result.output
    assert (tmp_path / "exp" / "decode" / "wer").read_text().startswith("%WER 0.00")
    assert (tmp_path / "exp" / "decode" / "scoring" / "best_wer").is_file()
    assert (tmp_path / "exp" / "decode" / "log" / "decode.2.log").is_file()

    # The LMWT sweep re-decodes at acoustic scale 1/LMWT: LMWT 10 must equal --acwt 0.1 above.
    result = runner.invoke(cli, ["decode", "--nj", "1", "--acwt", "0.5", "--min-lmwt", "9", "--max-lmwt", "11",
                                 str(tmp_path / "exp" / "graph"), str(tmp_path / "data"),
                                 str(tmp_path / "exp" / "sweep")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    sweep = tmp_path / "exp" / "sweep"
    assert (sweep / "scoring" / "10.txt").read_text() == (tmp_path / "exp" / "decode" / "hyp.txt").read_text()
    rates = {name: float((sweep / name).read_text().split()[1]) for name in ("wer", "wer_9", "wer_10", "wer_11")}
    best_line = (sweep / "scoring" / "best_wer").read_text().split()
    assert float(best_line[1]) == min(rates.values()) and best_line[-1].split("/")[-1] in rates


def test_mkgraph_refuses_a_lang_dir_with_another_phone_numbering(tmp_path, capsys):
    import pytest

    from kaldilite.cli import main

    rng = np.random.default_rng(0)
    lang = make_tiny_lang(tmp_path / "lang")
    tree, tm = make_tiny_model()
    make_model(tmp_path / "exp", tree, tm, rng)
    (tmp_path / "exp" / "phones.txt").write_text("<eps> 0\nSIL 1\nb 2\na 3\nc 4\n#0 5\n#1 6\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["mkgraph", str(lang.path), str(tmp_path / "exp"), str(tmp_path / "graph")])
    assert exit_info.value.code == 1
    assert f"{lang.path / 'phones.txt'} differs from" in capsys.readouterr().err
    assert not (tmp_path / "graph" / "HCLG.fst").exists()


def test_decode_without_features_names_the_missing_file(tmp_path, capsys):
    import pytest

    from kaldilite.cli import main

    rng = np.random.default_rng(0)
    lang = make_tiny_lang(tmp_path / "lang")
    tree, tm = make_tiny_model()
    make_model(tmp_path / "exp", tree, tm, rng)
    assert CliRunner().invoke(cli, ["mkgraph", str(lang.path), str(tmp_path / "exp"),
                                    str(tmp_path / "exp" / "graph")]).exit_code == 0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text("u1 A\n")
    with pytest.raises(SystemExit):
        main(["decode", "--nj", "1", str(tmp_path / "exp" / "graph"), str(tmp_path / "data"),
              str(tmp_path / "exp" / "decode")])
    assert f"{tmp_path / 'data' / 'feats.scp'}: no features" in capsys.readouterr().err


def test_a_graph_from_a_bigger_model_is_refused_before_decoding():
    import pytest

    from kaldilite.decode.decoder import BeamDecoder
    from kaldilite.errors import InputError
    from kaldilite.graph.compiled import CompiledFst

    graph = CompiledFst.from_arcs(2, 0, [0], [40], [0], [0.0], [1], [np.inf, 0.0])
    with pytest.raises(InputError, match="transition-id 40 but the model has only 36.*mkgraph"):
        BeamDecoder(graph, make_tiny_model()[1].tid_to_pdf)
