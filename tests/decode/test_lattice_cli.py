"""`decode --lattice-beam` and the lattice verbs end to end on features sampled from a known model.

The tiny lang of tests/graph (words A, AB, C); C is declared a filler, so an utterance that
generated only C must come out `<rejected>` and any other one as its words without C. The
generating word sequence is the independent answer; lattice verbs must agree with it and with
each other (best path = decoder output, posteriors sum to one on every frame).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "graph"))

from graph_fixtures import make_tiny_lang, make_tiny_model  # noqa: E402
from test_mkgraph_decode_cli import make_data, make_model  # noqa: E402

from kaldilite.cli import cli  # noqa: E402
from kaldilite.decode.lattice import read_lattices  # noqa: E402


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("latcli")
    rng = np.random.default_rng(5)
    lang = make_tiny_lang(tmp / "lang")
    (lang.path / "words").mkdir()
    (lang.path / "words" / "fillers.txt").write_text("C\n")
    tree, tm = make_tiny_model()
    am = make_model(tmp / "exp", tree, tm, rng)
    texts = make_data(tmp / "data", tree, tm, am, rng, num_utts=30)
    runner = CliRunner()
    result = runner.invoke(cli, ["mkgraph", str(lang.path), str(tmp / "exp"), str(tmp / "exp" / "graph")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["decode", "--nj", "2", "--acwt", "0.1", "--lattice-beam", "6",
                                 str(tmp / "exp" / "graph"), str(tmp / "data"), str(tmp / "exp" / "decode")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return tmp, texts


def lines_of(path):
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in Path(path).read_text().splitlines())


def test_mkgraph_copies_the_filler_list_next_to_the_graph(decoded):
    tmp, _ = decoded
    assert (tmp / "exp" / "graph" / "words" / "fillers.txt").read_text() == "C\n"


def test_decode_writes_one_lattice_per_utterance_and_decisions_that_reject_filler_only_utterances(decoded):
    tmp, texts = decoded
    decode = tmp / "exp" / "decode"
    keys = [k for job in (1, 2) for k, _ in read_lattices(decode / f"lat.{job}.gz")]
    assert sorted(keys) == sorted(texts)
    decisions = {u: line.split() for u, line in lines_of(decode / "decisions.txt").items()}
    assert set(decisions) == set(texts)
    for utt, text in texts.items():
        label, confidence, llr, reason = decisions[utt]
        command = [w for w in text.split() if w != "C"]
        if command:
            assert (label, reason) == ("+".join(command), "accepted"), utt
            assert float(confidence) > 0.9
        else:
            assert (label, reason) == ("<rejected>", "filler"), utt
    assert any(not [w for w in t.split() if w != "C"] for t in texts.values())  # the case is exercised


def test_lattice_best_path_and_mbr_decode_give_the_decoder_output(decoded, tmp_path):
    tmp, texts = decoded
    decode, graph = tmp / "exp" / "decode", tmp / "exp" / "graph"
    runner = CliRunner()
    lats = [str(decode / "lat.1.gz"), f"ark:gunzip -c {decode / 'lat.2.gz'}|"]
    words = ["--word-symbol-table", str(graph / "words.txt")]
    result = runner.invoke(cli, ["lattice-best-path", "--acoustic-scale", "0.1", *words, "--alignments",
                                 str(tmp_path / "ali.txt"), *lats, str(tmp_path / "best.txt")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert lines_of(tmp_path / "best.txt") == texts == lines_of(decode / "hyp.txt")
    result = runner.invoke(cli, ["lattice-mbr-decode", "--acoustic-scale", "0.1", *words, *lats,
                                 str(tmp_path / "mbr.txt")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert lines_of(tmp_path / "mbr.txt") == texts


def test_lattice_to_post_gives_one_distribution_per_frame(decoded, tmp_path):
    from kaldilite.io.tables import read_matrices

    tmp, texts = decoded
    decode = tmp / "exp" / "decode"
    result = CliRunner().invoke(cli, ["lattice-to-post", "--acoustic-scale", "0.1", str(decode / "lat.1.gz"),
                                      str(decode / "lat.2.gz"), str(tmp_path / "post.txt")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lengths = {utt: len(m) for utt, m in read_matrices(str(tmp / "data" / "feats.scp"))}
    alignments = {}
    CliRunner().invoke(cli, ["lattice-best-path", "--acoustic-scale", "0.1", "--alignments", str(tmp_path / "ali"),
                             str(decode / "lat.1.gz"), str(decode / "lat.2.gz"), str(tmp_path / "b")])
    for utt, line in lines_of(tmp_path / "ali").items():
        alignments[utt] = [int(t) for t in line.split()]
    for utt, line in lines_of(tmp_path / "post.txt").items():
        frames = [f.split() for f in line.strip().strip("[]").split("] [")]
        assert len(frames) == lengths[utt]
        for t, frame in enumerate(frames):
            pairs = dict(zip(map(int, frame[0::2]), map(float, frame[1::2])))
            assert sum(pairs.values()) == pytest.approx(1.0, abs=1e-4)
            assert alignments[utt][t] in pairs


def test_ctm_conf_and_apply_rejection_without_rejection(decoded, tmp_path):
    tmp, texts = decoded
    decode, graph = tmp / "exp" / "decode", tmp / "exp" / "graph"
    runner = CliRunner()
    result = runner.invoke(cli, ["lattice-to-ctm-conf", "--acoustic-scale", "0.1", "--word-symbol-table",
                                 str(graph / "words.txt"), str(decode / "lat.1.gz"), str(decode / "lat.2.gz"),
                                 str(tmp_path / "ctm")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ctm = {}
    for line in (tmp_path / "ctm").read_text().splitlines():
        utt, channel, start, duration, word, conf = line.split()
        assert channel == "1" and float(duration) >= 0 and 0 <= float(conf) <= 1
        ctm.setdefault(utt, []).append(word)
    assert {u: " ".join(w) for u, w in ctm.items()} == texts
    result = runner.invoke(cli, ["apply-rejection", "--acoustic-scale", "0.1", "--no-rejection", str(graph),
                                 str(decode / "lat.1.gz"), str(decode / "lat.2.gz"), str(tmp_path / "dec.txt")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    same = runner.invoke(cli, ["apply-rejection", "--acoustic-scale", "0.1", str(graph), str(decode / "lat.1.gz"),
                               str(decode / "lat.2.gz"), str(tmp_path / "dec2.txt")], catch_exceptions=False)
    assert same.exit_code == 0
    assert lines_of(tmp_path / "dec2.txt") == lines_of(decode / "decisions.txt")


def test_a_missing_lattice_archive_is_named(capsys):
    from kaldilite.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["lattice-best-path", "/nonexistent/lat.1.gz", "out.txt"])
    assert exit_info.value.code == 1
    assert "/nonexistent/lat.1.gz: no such lattice archive" in capsys.readouterr().err


def test_lattice_to_post_skips_a_lattice_without_a_path_and_names_the_lattice_it_refuses(tmp_path, caplog):
    """A lattice with no final state has no path (Kaldi's lattice-to-post would write NaN posteriors): skipped
    as failed, with a warning, as an empty one is. A lattice whose final states end after different frames
    (Kaldi asserts) stops the command in one line naming the archive and the lattice."""
    import logging

    from kaldilite.decode.lattice import Lattice, write_lattices
    from kaldilite.errors import InputError

    good = Lattice.from_arcs(2, [(0, 1, 7, 1.0, 0.0, [5]), (0, 1, 8, 2.0, 0.0, [6])], {1: (0.0, 0.0, [])})
    no_path = Lattice.from_arcs(2, [(0, 1, 7, 1.0, 0.0, [5])], {})
    uneven = Lattice.from_arcs(3, [(0, 1, 7, 0.0, 0.0, [5]), (0, 2, 8, 0.0, 0.0, [6, 6])],
                               {1: (0.0, 0.0, []), 2: (0.0, 0.0, [])})
    write_lattices(tmp_path / "lat.1.gz", [("good", good), ("nopath", no_path)])
    with caplog.at_level(logging.WARNING, logger="kaldilite.cli.lattice"):
        result = CliRunner().invoke(cli, ["lattice-to-post", str(tmp_path / "lat.1.gz"), str(tmp_path / "post.txt")])
    assert result.exit_code == 0, result.output
    assert "done 1 lattices, 1 failed" in result.output
    p = 1 / (1 + np.exp(-1.0))  # costs 1 and 2
    (line,) = (tmp_path / "post.txt").read_text().splitlines()
    key, pairs = line.split(maxsplit=1)
    assert key == "good" and pairs.startswith("[ 5 ") and pairs.endswith(" ]")
    written = dict(zip(*[iter(map(float, pairs.strip("[] ").split()))] * 2))
    assert written == pytest.approx({5: p, 6: 1 - p}, abs=1e-6)  # (written with %.6g)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'lat.1.gz'}: lattice nopath has no final state (no path): no posteriors written"]
    write_lattices(tmp_path / "lat.2.gz", [("good", good), ("uneven", uneven)])
    result = CliRunner().invoke(cli, ["lattice-to-post", str(tmp_path / "lat.2.gz"), str(tmp_path / "post2.txt")])
    assert isinstance(result.exception, InputError)
    assert str(result.exception).startswith(f"{tmp_path / 'lat.2.gz'}: lattice uneven: lattice final state 1 ends "
                                            "after 1 frames but final state 2 after 2: ")
    assert not (tmp_path / "post2.txt").exists()  # nothing half-written
