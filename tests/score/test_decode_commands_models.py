"""decode-commands with every model type, against the model family's own decoder on known corpora.

- SAT (tri3b of tests/train/test_lda_mllt_sat_synthetic.py: four speakers with known affine
  distortions): decode-commands' two-pass decode (SI final.alimdl -> per-speaker fMLLR ->
  lattice pass with final.mdl) gives the same words and the same per-speaker transforms as
  decode-fmllr's first two passes (`decode_fmllr` with ``final_update=False``, best-path
  posteriors, the same silence weight and min count), and those words are the spoken ones.
- nnet2 (the network of tests/nnet/test_nnet_cli.py on the synthetic monophone corpus):
  decode-commands' best paths equal decode-nnet2's, and every utterance comes back.
- The FSDD OOV eval set: ids, transcripts and a 16 kHz signal with nothing above 4 kHz.
- commands-results --oov: an OOV set's FA column from known measures.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.score.commands import read_measures

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "train"))  # synthetic_setup, shared by the synthetic corpora


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sat = _load("_dc_sat_corpus", TESTS / "train" / "test_lda_mllt_sat_synthetic.py")
_nnet = _load("_dc_nnet_cli", TESTS / "nnet" / "test_nnet_cli.py")
systems = _sat.systems            # module-scoped fixtures, built once for this module
mono_system = _nnet.mono_system
nnet_system = _nnet.nnet_system


def _measured_words(decode_dir):
    out = {}
    for line in (Path(decode_dir) / "measures.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["utt"]] = " ".join(w for w in (record["words"] or []) if w not in ("!SIL", "<eps>"))
    return out


def _hyp_words(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        utt, _, words = line.partition(" ")
        out[utt] = words.strip()
    return out


def _loop_graph(lang, model_dir, lexicon, tmp_path):
    import synthetic_setup

    loop_lang = synthetic_setup.word_loop_lang(lang, lexicon, tmp_path / "lang_loop")
    graph = tmp_path / "graph_loop"
    result = CliRunner().invoke(cli, ["mkgraph", str(loop_lang), str(model_dir), str(graph)])
    assert result.exit_code == 0, result.output
    return graph


@pytest.mark.parametrize("first_pass_measures", [False, True])
def test_sat_two_pass_decode_commands_equals_decode_fmllr_first_two_passes(systems, tmp_path, first_pass_measures):
    # with --first-pass-measures the first pass is decoded with lattices: same best paths, so the
    # same transforms and second pass as decode_fmllr
    from kaldilite.io.tables import read_matrices
    from kaldilite.train.sat import FmllrDecodeOptions, decode_fmllr

    tmp = systems["tmp"]
    graph = _loop_graph(systems["lang"], tmp / "tri3b", _sat.LEXICON, tmp_path)
    ours = tmp_path / "decode_commands"
    extra = ["--first-pass-measures"] if first_pass_measures else []
    if first_pass_measures:  # one word as a filler, so that both passes have a command-vs-filler llr
        (graph / "words").mkdir(exist_ok=True)
        (graph / "words" / "fillers.txt").write_text(sorted(_sat.LEXICON)[0] + "\n")
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "2", "--acwt", "0.1", "--beam", "13",
                                      "--first-beam", "10", "--silence-weight", "0", *extra, "--model",
                                      str(tmp / "tri3b" / "final.mdl"), str(graph), str(tmp / "data"), str(ours)])
    assert result.exit_code == 0, result.output
    reference = tmp_path / "decode_fmllr"
    decode_fmllr(graph, tmp / "data", reference, model_dir=tmp / "tri3b", nj=2,
                 opts=FmllrDecodeOptions(beam=13.0, first_beam=10.0, acoustic_scale=0.1, silence_weight=0.0,
                                         final_update=False, posteriors="best-path", fmllr_min_count=500.0))
    words = _measured_words(ours)
    assert words == _hyp_words(reference / "hyp.txt")
    text = _hyp_words(tmp / "data" / "text")
    assert sum(words[u] == t for u, t in text.items()) >= 0.9 * len(text)
    for k in (1, 2):
        theirs = dict(read_matrices(str(reference / f"trans.{k}")))
        mine = dict(read_matrices(str(ours / f"trans.{k}")))
        assert sorted(mine) == sorted(theirs) and mine
        for spk in mine:
            np.testing.assert_allclose(mine[spk], theirs[spk], rtol=0, atol=1e-6)
    rtf = float((ours / "rtf").read_text().split()[0])
    assert 0 < rtf < 1
    first_llr = [m.first_pass_llr for m, _ in read_measures(ours / "measures.jsonl").values()]
    if first_pass_measures:
        assert all(isinstance(v, float) for v in first_llr)
    else:
        assert all(v is None for v in first_llr)


def test_nnet2_decode_commands_best_paths_equal_decode_nnet2(nnet_system, tmp_path):
    tmp, _, _ = nnet_system
    graph = tmp / "mono" / "graph"
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "2", "--acwt", "1.0", "--beam", "13",
                                      "--min-active", "20", "--model", str(tmp / "nnet2" / "final.mdl"),
                                      str(graph), str(tmp / "data"), str(tmp_path / "decode_nnet2")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "2", "--acwt", "1.0", "--beam", "13",
                                      "--model", str(tmp / "nnet2" / "final.mdl"), str(graph), str(tmp / "data"),
                                      str(tmp_path / "decode_commands")])
    assert result.exit_code == 0, result.output
    words = _measured_words(tmp_path / "decode_commands")
    assert words == _hyp_words(tmp_path / "decode_nnet2" / "hyp.txt")
    assert words == _hyp_words(tmp / "data" / "text")


def test_fsdd_oov_set_is_every_digit_word_resampled_to_16k_with_nothing_above_4k(fsdd_dir, tmp_path):
    import soundfile

    from kaldilite.corpora.oov_eval import prepare_fsdd_oov
    from kaldilite.io.audio import read_audio

    data = prepare_fsdd_oov(fsdd_dir.parent, tmp_path / "oov", takes=1, speakers={"theo"})  # fixture: recordings/
    assert len(data) == 10 and set(data.text.values()) == {"zero", "one", "two", "three", "four", "five", "six",
                                                            "seven", "eight", "nine"}
    assert set(data.utt2spk.values()) == {"fsdd_theo"} and "fsdd_theo-seven-00" in data.text
    original, rate = soundfile.read(fsdd_dir / "7_theo_0.wav")
    assert rate == 8000
    wave = read_audio(data.wav_scp["fsdd_theo-seven-00"], 16000)  # refuses any other rate
    assert abs(len(wave) - 2 * len(original)) <= 2
    spectrum = np.abs(np.fft.rfft(np.asarray(wave, np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / 16000)
    assert spectrum[freqs > 4100].sum() < 1e-3 * spectrum.sum()


def test_fsdd_oov_digits_keeps_only_those_digits_with_their_words(fsdd_dir, tmp_path):
    from kaldilite.corpora.oov_eval import prepare_fsdd_oov

    data = prepare_fsdd_oov(fsdd_dir.parent, tmp_path / "oov", takes=10, speakers={"theo"}, digits=[7, 9])
    assert list(data.text) == [f"fsdd_theo-{word}-{take:02d}" for word in ("nine", "seven") for take in range(10)]
    assert all(data.text[utt] == utt.split("-")[1] for utt in data.text)


def test_fsdd_oov_pad_to_centres_each_clip_in_one_second_of_silence(fsdd_dir, tmp_path):
    from kaldilite.corpora.oov_eval import prepare_fsdd_oov
    from kaldilite.io.audio import read_audio

    plain = prepare_fsdd_oov(fsdd_dir.parent, tmp_path / "plain", takes=1, speakers={"theo"})
    padded = prepare_fsdd_oov(fsdd_dir.parent, tmp_path / "padded", takes=1, speakers={"theo"}, pad_to=1.0)
    utt = "fsdd_theo-seven-00"
    word = np.asarray(read_audio(plain.wav_scp[utt], 16000), np.float64)
    wave = np.asarray(read_audio(padded.wav_scp[utt], 16000), np.float64)
    assert len(word) < 16000 and abs(len(wave) - 16000) <= 2
    # the same samples, with (1 s - clip) / 2 of silence on each side (within a sample of rounding; sox
    # dithers its 16-bit output, +-2 LSB; the resampler's filter rings for a few samples next to the word)
    lead = (len(wave) - len(word)) // 2
    best = min(range(lead - 2, lead + 3), key=lambda k: np.abs(wave[k:k + len(word)] - word).max())
    assert abs(best - lead) <= 1 and np.abs(wave[best:best + len(word)] - word).max() <= 2
    assert np.abs(wave[:best - 32]).max() <= 2 and np.abs(wave[best + len(word) + 32:]).max() <= 2
    assert np.abs(word).max() > 500  # (the word itself is loud)
    # repeatable: sox's dither is seeded (-R), so reading the clip again gives the same samples
    np.testing.assert_array_equal(np.asarray(read_audio(padded.wav_scp[utt], 16000), np.float64), wave)


def test_sat_fmllr_from_the_garbage_side_is_estimated_on_the_best_path_without_commands(systems, tmp_path):
    # --fmllr-hypothesis garbage: the transforms are those of decode_fmllr's first pass run on the
    # graph restricted to the filler side (here: the one filler word AB), whatever the best path was
    from kaldilite.decode.confidence import restrict_graph, word_ids_by_side
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.io.tables import read_matrices
    from kaldilite.train.decode_commands import first_pass_speaker_transforms
    from kaldilite.lang.langdir import read_phone_list
    from kaldilite.train.sat import _speakers_of
    from kaldilite.transform.fmllr import FmllrOptions

    tmp = systems["tmp"]
    graph_dir = _loop_graph(systems["lang"], tmp / "tri3b", _sat.LEXICON, tmp_path)
    (graph_dir / "words").mkdir(exist_ok=True)
    (graph_dir / "words" / "fillers.txt").write_text("AB\n")
    ours = tmp_path / "decode_commands"
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--first-beam", "10", "--silence-weight", "0",
                                      "--fmllr-hypothesis", "garbage", "--model", str(tmp / "tri3b" / "final.mdl"),
                                      str(graph_dir), str(tmp / "data"), str(ours)])
    assert result.exit_code == 0, result.output
    graph, words = load_graph(graph_dir), SymbolTable.read(graph_dir / "words.txt")
    fillers, commands = word_ids_by_side(graph, words, {"AB"})
    assert len(fillers) == 1 and len(commands) == len(_sat.LEXICON) - 1
    si_tm, si_am, si_pipeline, _ = load_model(tmp / "tri3b" / "final.alimdl")
    _, am, _, _ = load_model(tmp / "tri3b" / "final.mdl")
    utt2spk, _ = _speakers_of(tmp / "data")
    silence = read_phone_list(graph_dir / "phones" / "silence.int", "re-run mkgraph")
    expected = first_pass_speaker_transforms(
        restrict_graph(graph, commands), si_tm, si_am, am, dict(load_features(tmp / "data", si_pipeline)), utt2spk,
        silence, DecoderOptions(beam=10.0, acoustic_scale=0.1),
        FmllrOptions(min_count=500.0), 0.0)
    mine = dict(read_matrices(str(ours / "trans.1")))
    assert sorted(mine) == sorted(expected) and mine
    for spk in mine:
        np.testing.assert_allclose(mine[spk], expected[spk], rtol=0, atol=1e-6)
    # and they differ from the transforms of the unrestricted best path (the test has teeth)
    best = first_pass_speaker_transforms(
        graph, si_tm, si_am, am, dict(load_features(tmp / "data", si_pipeline)), utt2spk,
        silence, DecoderOptions(beam=10.0, acoustic_scale=0.1),
        FmllrOptions(min_count=500.0), 0.0)
    assert any(np.abs(best[spk] - mine[spk]).max() > 1e-3 for spk in mine)


def test_commands_results_reports_an_oov_sets_false_accepts_from_known_measures(tmp_path):
    from kaldilite.decode.rejection import Measures
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import measures_to_json

    def write(name, rows):
        text = {u: t for u, t, _ in rows}
        DataDir(wav_scp={u: "/dev/null" for u in text}, text=text,
                utt2spk={u: u.split("-")[0] for u in text}).save(tmp_path / "data" / name)
        return [measures_to_json(u, m, 100) for u, _, m in rows]

    def command(word, llr):
        return Measures((word,), (word,), 1.0, llr, False, (word,), 1.0)

    dev = [(f"s{k}-yes-{i}", "yes", command("yes", 1.0 + i + k)) for k in range(2) for i in range(5)]
    dev += [(f"s{k}-cat-0", "cat", command("no", -1.0 - k)) for k in range(2)]
    oov = [(f"fsdd_{k}-one-{i}", "one", command("on", -0.5 - 0.1 * i - 5 * k)) for k in range(2) for i in range(10)]
    exp = tmp_path / "exp" / "toy"
    for name, rows in (("dev", dev), ("oov", oov)):
        (exp / f"decode_{name}").mkdir(parents=True)
        (exp / f"decode_{name}" / "measures.jsonl").write_text("\n".join(write(name, rows)) + "\n")
    (exp / "graph_commands").mkdir()
    (exp / "graph_commands" / "rejection.json").write_text(json.dumps({"score": "llr", "threshold": 0.0}))
    (tmp_path / "commands.txt").write_text("yes\nno\non\n")
    result = CliRunner().invoke(cli, ["commands-results", "--commands", str(tmp_path / "commands.txt"),
                                      "--target-fa", "0.0", "--oov", f"oov={tmp_path / 'data' / 'oov'}",
                                      str(tmp_path / "data" / "dev"), str(exp)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| toy")]
    calibrated, no_threshold = (line.split(" | ") for line in lines)
    # FA 0 everywhere: every negative's llr (<= 0.9) is below every command's (>= 1), so a
    # threshold calibrated on either half of the speakers rejects all negatives and no command
    assert calibrated[2:5] == ["100.0 (10/10)", "0.0", "0.0 (0/2)"] and calibrated[5] == "0.0 (0/20)"
    # without a threshold every utterance's best path is a command
    assert no_threshold[4:6] == ["100.0 (2/2)", "100.0 (20/20)"]
