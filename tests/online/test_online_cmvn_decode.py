"""decode-commands --online-cmvn computes what decode-online computes, and decode-online's
per-speaker CMVN (--utt2spk) and per-utterance reset (--carry-cmvn false).

The independent answer for the batch path is the live recognizer itself: the same FSDD files
streamed through `OnlineRecognizer` (endpointing off, so each file is one utterance) give, per
file, the score and decision decode-commands --online-cmvn writes, when the data dir's spk2utt
order is the order the files were spoken in. Features are made without dither so that the
streamed MFCC equal feats.scp's. Two protocols: decode-commands' default (each speaker's files in the
random order of --online-cmvn-order-seed 0, each file's frames joining the carried stats with those
its best path puts on silence weighted 0) against the recognizer with its default --cmvn-silence-weight
0 fed the files in that order; and the old one (--online-cmvn-order-seed -1
--online-cmvn-silence-weight 1: spk2utt order, all frames, as apply-cmvn-online) against the
recognizer at weight 1 in spk2utt order. Not vacuous: the recognizer fed in the other protocol's order,
or with its silence weight, scores otherwise (`_assert_live_equals_batch`).

Near-ties (why the weights are compared apart from the scores): live (chunked) and batch (whole-clip)
acoustic scores differ by ~1e-5, so where a clip's best path is a near-tie between a phone and silence
the two may put 1-3 frames differently on silence; at weight 0 those frames then join the carried stats
on one side only and the speaker's NEXT clips score differently, beyond the tolerance. Which clips tie
depends on the machine's rounding (CI's CPU is not ours), so the test checks two things apart: the
carry weights (batch's cmvn_weights ark = the live recognizer's, but for at most MAX_TIE_FRAMES frames of
a clip at a speech/silence boundary), and the scores with those weights fixed (decode-commands given the
live recognizer's weights through --online-cmvn-history-weights = the live scores, every clip). The
batch decode's own scores must equal the live ones on every clip whose speaker's earlier clips carried
the same weights; the others (after a near-tie) are counted, and must be at most half.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from online_helpers import MFCC_CONF

# wide enough that the likelihood ratio is not clipped at +-lattice_beam / acwt (60 at the default
# 6), where online and offline CMVN would give the same clipped score
LATTICE_BEAM = 40.0
# a near-tie of the best path between a phone and silence at a boundary moves it by a frame or a few: at most this
# many frames of a clip may carry other weights live than in decode-commands (measured here: 0 on every clip;
# simulated, live's silence/speech boundary in theo-6_theo_1 moved by 1 frame moves theo-4_theo_2's score by
# 0.63 against decode-commands' own, 2 of 7 clips excused, and the scores with the live weights fed agree <= 1e-4;
# moved by 4 frames the weights check fails)
MAX_TIE_FRAMES = 3
# (speaker, FSDD file), in utterance-id order (Kaldi's sort order is each speaker's spk2utt order)
FILES = [("jackson", "0_jackson_4"), ("jackson", "2_jackson_1"), ("jackson", "3_jackson_2"), ("jackson", "9_jackson_2"),
         ("theo", "3_theo_0"), ("theo", "4_theo_2"), ("theo", "6_theo_1")]


@pytest.fixture(scope="module")
def garbage_graph_dir(digits_system, tmp_path_factory):
    """The digits monophone's graph for eight digit commands, `five`/`nine` fillers and a garbage
    phone loop, as the commands recipe builds them: the command-vs-garbage likelihood ratio is
    finite, so it shows the normalization (without garbage it is clipped on every clean digit)."""
    from online_helpers import COMMANDS, FILLERS

    from kaldilite.gmm.model import load_model
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import ContextDependency
    from kaldilite.lang.grammar import make_grammar

    tmp = tmp_path_factory.mktemp("garbage")
    (tmp / "commands.txt").write_text("\n".join(COMMANDS) + "\n")
    (tmp / "fillers.txt").write_text("\n".join(FILLERS) + "\n")
    make_grammar(tmp / "commands.txt", digits_system / "data/lang", tmp / "lang", fillers=tmp / "fillers.txt",
                 garbage=True)
    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    mkgraph(tmp / "lang", tmp / "graph", tm, ContextDependency.read(digits_system / "exp/mono/tree"))
    return tmp / "graph"


@pytest.fixture(scope="module")
def online_setup(digits_system, garbage_graph_dir, fsdd_dir, tmp_path_factory):
    """(data dir of FILES, bundle dir exported with a dither-free MFCC config, mono model path)."""
    from kaldilite.feat.make import compute_cmvn_stats, make_features
    from kaldilite.feat.options import MfccOptions
    from kaldilite.io.config import read_config
    from kaldilite.online.bundle import export_model

    tmp = tmp_path_factory.mktemp("online_cmvn")
    conf = tmp / "mfcc.conf"
    conf.write_text(MFCC_CONF.read_text() + "--dither=0\n")
    data = tmp / "data"
    data.mkdir()
    utts = [(f"{spk}-{name}", spk, name) for spk, name in FILES]
    (data / "wav.scp").write_text("".join(f"{u} {fsdd_dir / name}.wav\n" for u, _, name in utts))
    (data / "utt2spk").write_text("".join(f"{u} {spk}\n" for u, spk, _ in utts))
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u for u, spk, _ in utts if spk == s)}\n"
                                          for s in ("jackson", "theo")))
    (data / "text").write_text("".join(f"{u} x\n" for u, _, _ in utts))
    make_features(data, tmp / "log", tmp / "mfcc", opts=read_config(conf, MfccOptions), nj=1)
    compute_cmvn_stats(data, tmp / "log", tmp / "mfcc")
    bundle = tmp / "bundle"
    # the training data's stats are the prior, as the recipe's bundle has them
    export_model(digits_system / "exp/mono", garbage_graph_dir, bundle, mfcc_config=conf,
                 data_dir=digits_system / "data/train",
                 default_rejection=True, check_features=False)
    # scores to compare: the likelihood ratio summed over the utterance (the default rule's
    # confidence is 1.0 on most clean digits)
    from kaldilite.decode.rejection import RULE_FILE, RejectionRule

    RejectionRule(score="llr_total", threshold=0.0, enabled=True).save(bundle / RULE_FILE)
    return data, bundle, digits_system / "exp/mono/final.mdl"


# (decode-commands options, the recognizer's --cmvn-silence-weight, the order seed the files are fed in)
PROTOCOLS = {"live": ([], "0", 0),
             "old": (["--online-cmvn-order-seed", "-1", "--online-cmvn-silence-weight", "1"], "1", None)}


def _decode_commands(setup, graph_dir, out, data=None, options=()):
    from kaldilite.cli import cli
    from kaldilite.score.commands import read_measures

    data_dir, bundle, model = setup
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--lattice-beam", str(LATTICE_BEAM),
                                      "--online-cmvn", str(bundle / "global_cmvn.stats"),
                                      "--online-cmvn-config", str(bundle / "conf/online_cmvn.conf"), *options,
                                      "--model", str(model), str(graph_dir), str(data or data_dir), str(out)])
    assert result.exit_code == 0, result.output
    return read_measures(out / "measures.jsonl")


def _fed_in_order(data, seed):
    """{speaker: its utterances in the order decode-commands carries them with this order seed}."""
    from kaldilite.feat.cmvn import speaker_orders

    orders = speaker_orders(data.spk2utt, seed)
    if seed is not None:  # not vacuous: the random order is not spk2utt's
        assert any(orders[s] != list(u) for s, u in data.spk2utt.items())
    return orders


def _live_scores(bundle_dir, data, orders, silence_weight, weights=None):
    """{utt: (label, score)} of `OnlineRecognizer` on the bundle (endpointing off), each speaker's files
    streamed in `orders` ({speaker: utts}) with the speaker state carried from file to file (as
    decode-online --utt2spk carries it), silence frames weighted `silence_weight` (a string).
    `weights`: a dict that receives each file's carry weights (what the recognizer's
    `cmvn_carry_weights` decided; every frame 1 when it said None)."""
    from unittest import mock

    import kaldilite.online.recognizer as recognizer_module
    from kaldilite.io.audio import read_audio
    from kaldilite.online.bundle import ModelBundle
    from kaldilite.online.recognizer import OnlineRecognizer

    decided, decide = [], recognizer_module.cmvn_carry_weights

    def recorded(decoder, is_silence_tid, num_frames, weight):
        carried = decide(decoder, is_silence_tid, num_frames, weight)
        decided.append(np.ones(num_frames) if carried is None else np.asarray(carried, np.float64))
        return carried

    bundle = ModelBundle.load(bundle_dir, overrides={"do-endpointing": "false", "lattice-beam": LATTICE_BEAM,
                                                      "cmvn-silence-weight": silence_weight})
    live = {}
    with mock.patch.object(recognizer_module, "cmvn_carry_weights", recorded):
        for speaker, utts in orders.items():
            recognizer = OnlineRecognizer(bundle)
            state = bundle.speaker_state()  # a new speaker: the global prior, then carried
            for utt in utts:
                recognizer.new_stream(utt, speaker_state=state)
                results = recognizer.accept(read_audio(data.wav_scp[utt])) + recognizer.input_finished()
                assert len(results) == 1, (utt, results)
                live[utt] = (results[0].text, results[0].score)
                state = recognizer.speaker_state
                assert len(decided) == 1, (utt, len(decided))  # one carry per file
                if weights is not None:
                    weights[utt] = decided[0]
                decided.clear()
    return live


def _tie_frames(live, batch):
    """Frames of one clip whose carry weights differ live and in decode-commands, None when they differ
    otherwise than by a near-tie: same length, at most MAX_TIE_FRAMES frames, each run of them a speech/silence
    boundary moved (inside a run each side constant, so a run not covering the whole clip borders a boundary)."""
    if len(live) != len(batch):
        return None
    differ = np.flatnonzero(live != batch)
    if differ.size > MAX_TIE_FRAMES:
        return None
    runs = np.split(differ, np.flatnonzero(np.diff(differ) > 1) + 1) if differ.size else []
    if any(np.ptp(live[r]) or np.ptp(batch[r]) or r.size == len(live) for r in runs):
        return None
    return int(differ.size)


def _assert_live_equals_batch(bundle_dir, data, decode, decode_dir, protocol, check_weight=True):
    """The live recognizer fed as `protocol` carries gives decode-commands' labels and scores (DECODE_DIR's,
    decoded with `decode(out, options) -> {utt: (label, score)}`), allowing for near-ties (module docstring):
    its carry weights are DECODE_DIR/cmvn_weights.1.ark's up to `_tie_frames`; decode-commands fed the live
    weights (--online-cmvn-history-weights) scores as live on every clip; DECODE_DIR's own scores do on every
    clip whose speaker carried the same weights before it, and those are most clips. Fed in the other
    protocol's order, or (`check_weight`) with its silence weight, the recognizer scores otherwise (so the
    check would fail if decode-commands carried in another order or with other weights).
    Returns (live scores, number of clips whose own scores were checked, number excused after a near-tie)."""
    from kaldilite.io.tables import read_vectors, write_vectors

    options, silence_weight, seed = PROTOCOLS[protocol]
    _, other_weight, other_seed = PROTOCOLS["old" if protocol == "live" else "live"]
    orders = _fed_in_order(data, seed)
    live_weights = {}
    live = _live_scores(bundle_dir, data, orders, silence_weight, live_weights)
    batch = decode(decode_dir, options)
    if silence_weight == "1":  # every frame carried at 1: nothing decided, no weights written; the carry recorded
        from kaldilite.feat.cmvn import read_cmvn_carry

        assert not list(decode_dir.glob("cmvn_weights.*.ark"))
        assert read_cmvn_carry(decode_dir, "") == ((-1 if seed is None else seed), 1.0)
        batch_weights, fed = {u: np.ones(len(w)) for u, w in live_weights.items()}, batch
    else:
        batch_weights = {u: np.asarray(w, np.float64) for u, w in read_vectors(str(decode_dir / "cmvn_weights.1.ark"))}
        given = decode_dir.parent / f"{decode_dir.name}_live_weights"
        given.mkdir()
        write_vectors(sorted(live_weights.items()), given / "cmvn_weights.1.ark")
        fed = decode(decode_dir.parent / f"{decode_dir.name}_fed_live", options + [
            "--online-cmvn-history", str(data.path), "--online-cmvn-history-weights", str(given)])
    assert sorted(batch_weights) == sorted(live_weights) == sorted(batch)
    ties = {u: _tie_frames(live_weights[u], batch_weights[u]) for u in live}
    assert None not in ties.values(), {u: (live_weights[u], batch_weights[u]) for u, t in ties.items() if t is None}
    # the scores with the carried weights fixed: every clip
    assert [label for label, _ in live.values()] == [fed[u][0] for u in live]
    np.testing.assert_allclose([s for _, s in live.values()], [fed[u][1] for u in live], rtol=1e-4, atol=1e-3)
    # decode-commands' own scores: every clip after which its speaker's carried weights agreed exactly
    checked = [u for utts in orders.values() for i, u in enumerate(utts) if not any(ties[v] for v in utts[:i])]
    assert [live[u][0] for u in checked] == [batch[u][0] for u in checked]
    np.testing.assert_allclose([live[u][1] for u in checked], [batch[u][1] for u in checked], rtol=1e-4, atol=1e-3)
    excused = len(live) - len(checked)
    # most clips: one near-tie at a speaker's first clip excuses the rest of its clips (up to 3 of these 7)
    assert len(checked) >= len(live) / 2, (len(checked), excused, ties)
    for other_orders, weight in ((_fed_in_order(data, other_seed), silence_weight),
                                 (orders, other_weight))[:2 if check_weight else 1]:
        wrong = _live_scores(bundle_dir, data, other_orders, weight)
        assert max(abs(wrong[u][1] - batch[u][1]) for u in wrong if np.isfinite(batch[u][1])) > 0.01, weight
    print(f"{protocol}: {len(checked)} clips fully checked, {excused} excused after a near-tie, "
          f"{sum(ties.values())} tie frames")
    return live, len(checked), excused


def _score(json_line):
    from kaldilite.online.recognizer import JSON_INFINITY

    score = json_line["score"]  # JSON has no infinities: decode-online --json writes them +/-JSON_INFINITY
    return np.copysign(np.inf, score) if abs(score) >= JSON_INFINITY else score


def _scores(bundle_dir, measures):
    """{utt: (label, score)} of decode-commands' measures under the bundle's rule."""
    from kaldilite.online.bundle import ModelBundle

    rule = ModelBundle.load(bundle_dir).rejection
    decided = {u: rule.decide_measures(m, n) for u, (m, n) in measures.items()}
    return {u: (d.label if d.accepted else "<rejected>", d.score) for u, d in decided.items()}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_decode_commands_online_cmvn_is_what_the_live_recognizer_computes(online_setup, garbage_graph_dir, tmp_path,
                                                                          protocol):
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import read_measures

    data_dir, bundle_dir, _ = online_setup

    def decode(out, options):
        return _scores(bundle_dir, _decode_commands(online_setup, garbage_graph_dir, out, options=options))

    _assert_live_equals_batch(bundle_dir, DataDir.load(data_dir), decode, tmp_path / "decode", protocol)
    batch = _scores(bundle_dir, read_measures(tmp_path / "decode/measures.jsonl"))
    # the offline per-speaker CMVN gives other scores: the check above is not vacuous
    from kaldilite.cli import cli

    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--lattice-beam", str(LATTICE_BEAM),
                                      "--model", str(online_setup[2]),
                                      str(garbage_graph_dir), str(data_dir), str(tmp_path / "offline")])
    assert result.exit_code == 0, result.output
    offline = _scores(bundle_dir, read_measures(tmp_path / "offline/measures.jsonl"))
    assert max(abs(offline[u][1] - batch[u][1]) for u in batch) > 0.01


def test_decode_online_utt2spk_carries_cmvn_per_speaker_and_carry_false_resets(online_setup, garbage_graph_dir,
                                                                               tmp_path):
    from kaldilite.cli import cli
    from kaldilite.io.datadir import DataDir

    data_dir, bundle_dir, _ = online_setup
    data = DataDir.load(data_dir)
    batch = _scores(bundle_dir, _decode_commands(online_setup, garbage_graph_dir, tmp_path / "decode",
                                                 options=PROTOCOLS["old"][0]))
    # the files interleaved by speaker: jackson's second file must resume jackson, not theo
    jackson, theo = ([f"{spk}-{name}" for spk, name in FILES if spk == who] for who in ("jackson", "theo"))
    order = [u for pair in zip(jackson, theo + [None]) for u in pair if u]  # j1 t1 j2 t2 j3 t3 j4
    wavs = [data.wav_scp[u] for u in order]
    (tmp_path / "utt2spk").write_text("".join(f"{name.split('-', 1)[1]} {name.split('-')[0]}\n" for name in order))
    common = ["decode-online", "--model", str(bundle_dir), "--do-endpointing", "false", "--json",
              "--config", str(tmp_path / "online.conf"), "--wav"]
    (tmp_path / "online.conf").write_text(f"--lattice-beam={LATTICE_BEAM}\n--cmvn-silence-weight=1\n")
    result = CliRunner().invoke(cli, common[:-1] + ["--utt2spk", str(tmp_path / "utt2spk"), "--wav"] + wavs)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["source"] for line in lines] == wavs
    np.testing.assert_allclose([_score(line) for line in lines], [batch[u][1] for u in order], rtol=1e-4, atol=1e-3)

    # --carry-cmvn false: every file from the global prior = each utterance its own speaker
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("wav.scp", "feats.scp", "cmvn.scp", "text"):
        (alone / name).write_text((data_dir / name).read_text())
    (alone / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(data.utt2spk)))
    (alone / "spk2utt").write_text("".join(f"{u} {u}\n" for u in sorted(data.utt2spk)))
    fresh = _scores(bundle_dir, _decode_commands(online_setup, garbage_graph_dir, tmp_path / "fresh", alone))
    result = CliRunner().invoke(cli, common[:-1] + ["--carry-cmvn", "false", "--wav"] + wavs)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    np.testing.assert_allclose([_score(line) for line in lines], [fresh[u][1] for u in order], rtol=1e-4, atol=1e-3)
    assert max(abs(fresh[u][1] - batch[u][1]) for u in order) > 0.01  # carrying matters on these files

    # a file without a speaker is named
    (tmp_path / "partial").write_text("3_theo_0 theo\n")
    result = CliRunner().invoke(cli, common[:-1] + ["--utt2spk", str(tmp_path / "partial"), "--wav"] + wavs[:2])
    assert result.exit_code != 0 and "no speaker for" in str(result.exception)


# --------------------------------------------- a model trained on online CMVN (train-nnet2 --online-cmvn)

@pytest.fixture(scope="module")
def online_nnet(digits_system, garbage_graph_dir, online_setup, tmp_path_factory):
    """(model path, bundle dir): a small DNN trained with --online-cmvn true on the digits mono
    alignments, exported WITHOUT --data (its global stats are its own) with the llr_total rule."""
    from kaldilite.cli import cli
    from kaldilite.decode.rejection import RULE_FILE, RejectionRule
    from kaldilite.online.bundle import export_model

    tmp = tmp_path_factory.mktemp("online_nnet")
    result = CliRunner().invoke(cli, ["train-nnet2", "--online-cmvn", "true", "--online-cmvn-order", "random",
                                      "--online-cmvn-silence-weight", "0", "--num-epochs", "2",
                                      "--samples-per-iter", "4000", "--pnorm-input-dim", "100",
                                      "--pnorm-output-dim", "20", "--num-utts-subset", "20",
                                      "--max-models-combine", "2", "--splice-width", "2", "--num-threads", "1",
                                      str(digits_system / "data/train"), str(digits_system / "data/lang"),
                                      str(digits_system / "exp/mono"), str(tmp / "nnet2")])
    assert result.exit_code == 0, result.output
    conf = online_setup[1] / "conf/mfcc.conf"
    export_model(tmp / "nnet2", garbage_graph_dir, tmp / "bundle", mfcc_config=conf, default_rejection=True,
                 model=tmp / "nnet2/final.mdl", check_features=False)
    RejectionRule(score="llr_total", threshold=0.0, enabled=True).save(tmp / "bundle" / RULE_FILE)
    return tmp / "nnet2/final.mdl", tmp / "bundle"


def test_online_cmvn_model_records_the_training_data_global_stats(online_nnet, digits_system):
    from kaldilite.feat.pipeline import global_cmvn_stats
    from kaldilite.gmm.model import read_model_header
    from kaldilite.io.tables import read_matrices, read_matrix
    from kaldilite.nnet.model import load_nnet_model

    model_path, bundle = online_nnet
    model = load_nnet_model(model_path)
    expected = global_cmvn_stats(digits_system / "data/train")
    assert model.pipeline.cmvn == "online"
    np.testing.assert_array_equal(model.pipeline.online_cmvn_stats, expected)
    # independently of cmvn.scp and its summing: count, sum and sum of squares of every training frame
    frames = np.concatenate([np.asarray(m, np.float64)
                             for _, m in read_matrices(f"scp:{digits_system / 'data/train/feats.scp'}")])
    direct = np.zeros((2, frames.shape[1] + 1))
    direct[0, :-1], direct[1, :-1], direct[0, -1] = frames.sum(axis=0), (frames * frames).sum(axis=0), len(frames)
    np.testing.assert_allclose(model.pipeline.online_cmvn_stats, direct, rtol=1e-6)
    assert read_model_header(model_path)["version"] == 6  # older readers refuse it instead of misreading it
    # the bundle ships the model's own prior (export-model was given no --data) and options
    np.testing.assert_allclose(read_matrix(str(bundle / "global_cmvn.stats")), expected, rtol=1e-6)
    assert "--norm-vars=false" in (bundle / "conf/online_cmvn.conf").read_text()


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_online_cmvn_model_decodes_a_data_dir_as_the_live_recognizer_scores_it(online_nnet, online_setup,
                                                                               garbage_graph_dir, tmp_path, protocol,
                                                                               caplog):
    """decode-commands with no CMVN option on the model = OnlineRecognizer on the bundle, file by
    file, each speaker's files in decode-commands' order with the CMVN state carried (as decode-online
    --utt2spk carries it), silence frames weighted alike. The old protocol's weight 1 is not the 0 the
    model was trained with: one warning line that says the fix."""
    import logging

    from kaldilite.cli import cli
    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.online.bundle import ModelBundle
    from kaldilite.online.recognizer import OnlineRecognizer
    from kaldilite.score.commands import read_measures

    model_path, bundle_dir = online_nnet
    data_dir = online_setup[0]
    args = ["decode-commands", "--nj", "1", "--lattice-beam", str(LATTICE_BEAM), "--model", str(model_path),
            str(garbage_graph_dir), str(data_dir)]

    warned = {}  # {decode dir: the carry warnings its decode-commands logged}

    def decode(out, options):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
            result = CliRunner().invoke(cli, args[:1] + options + args[1:] + [str(out)])
        assert result.exit_code == 0, result.output
        warned[out.name] = [r.getMessage() for r in caplog.records
                            if "online-CMVN stats carried with silence" in r.getMessage()]
        return _scores(bundle_dir, read_measures(out / "measures.jsonl"))

    data = DataDir.load(data_dir)
    # the order only: this small DNN's best paths put no frame of these trimmed clips on silence (measured: 0
    # frames; the monophone's 30, in theo-6_theo_1), so the silence weight changes nothing here
    live, _, _ = _assert_live_equals_batch(bundle_dir, data, decode, tmp_path / "decode", protocol, check_weight=False)
    warned = warned["decode"]
    assert len(warned) == (protocol == "old") and all(
        "\n" not in w and "set --online-cmvn-silence-weight 0 (decode-commands)" in w for w in warned), warned
    # not vacuous: the same model fed each file from the global prior alone (no carried stats) scores otherwise
    bundle = ModelBundle.load(bundle_dir, overrides={"do-endpointing": "false", "lattice-beam": LATTICE_BEAM})
    fresh = {}
    for utt in live:
        recognizer = OnlineRecognizer(bundle)
        recognizer.new_stream(utt)
        (res,) = recognizer.accept(read_audio(data.wav_scp[utt])) + recognizer.input_finished()
        fresh[utt] = res.score
    assert max(abs(fresh[u] - live[u][1]) for u in live if np.isfinite(live[u][1])) > 0.01
    # told the stats twice: refused with the reason
    result = CliRunner().invoke(cli, args[:1] + ["--online-cmvn", str(bundle_dir / "global_cmvn.stats")] + args[1:]
                                + [str(tmp_path / "twice")])
    assert result.exit_code != 0 and "records its global stats" in result.output


def test_the_model_records_how_training_carried_and_a_bundle_decoding_otherwise_warns(online_nnet, caplog):
    import logging

    from kaldilite.gmm.model import read_model_header
    from kaldilite.online.bundle import ModelBundle

    model_path, bundle_dir = online_nnet
    options = read_model_header(model_path)["extra"]["options"]
    assert (options["online_cmvn_order"], options["online_cmvn_silence_weight"]) == ("random", 0.0)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        ModelBundle.load(bundle_dir)  # decode-online's default weight 0: as trained, no warning
    assert "--cmvn-silence-weight" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        ModelBundle.load(bundle_dir, overrides={"cmvn-silence-weight": "1"})
    assert "trained with the online-CMVN stats carried with silence frames weighted 0" in caplog.text


def test_export_says_when_the_rule_was_calibrated_with_another_carry_than_the_model_trained_with(
        online_nnet, garbage_graph_dir, tmp_path, caplog):
    """The model trained with its silence frames carried at weight 0. Its rule calibrated on decodes that carried
    them at 1 (EXP/decode_dev/cmvn_carry.conf): the bundle carries with 1, the threshold's, and export-model says
    so in one line naming both weights and files and the fix; loading the bundle says nothing more (decoding as
    calibrated), decoding it with 0 warns that the threshold does not hold. Calibrated with 0: all quiet."""
    import logging

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.feat.cmvn import write_cmvn_carry
    from kaldilite.graph.provenance import decode_record
    from kaldilite.online.bundle import ModelBundle, export_model

    model_path, bundle_dir = online_nnet
    for weight in (1, 0):
        exp = tmp_path / f"work{weight}/exp/nnet2"  # (named as the model's experiment: its rules' decodes)
        (exp / "decode_dev").mkdir(parents=True)
        write_cmvn_carry(exp / "decode_dev", 0, weight)
        rule = exp / "graph_commands/rejection.json"
        rule.parent.mkdir()
        # (with the record calibrate-rejection copies from the decodes: their model and graph, so no warning for it)
        recorded = decode_record(model_path, garbage_graph_dir)
        RejectionRule(score="llr_total", calibration={"decode_dir": "exp/nnet2/decode_dev",
                                                      "decoded_with": recorded}).save(rule)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
            out = export_model(model_path.parent, garbage_graph_dir, tmp_path / f"bundle{weight}",
                               mfcc_config=bundle_dir / "conf/mfcc.conf", model=model_path, rejection=rule,
                               check_features=False)
            ModelBundle.load(out)
        assert f"--cmvn-silence-weight={weight}" in (out / "conf/online.conf").read_text().splitlines()
        warned = [r.getMessage() for r in caplog.records]
        if weight == 0:
            assert warned == []
            continue
        assert warned == [f"{model_path} was trained with the online-CMVN stats carried with silence frames weighted 0 "
                          f"(train-nnet2 --online-cmvn-silence-weight) but {rule} was calibrated on decodes carrying "
                          f"them weighted 1 ({exp / 'decode_dev/cmvn_carry.conf'}), which the bundle carries as its "
                          "threshold needs; to decode as trained, re-decode and re-calibrate with decode-commands "
                          "--online-cmvn-silence-weight 0 (the commands recipe's online_cmvn_silence_weight) and "
                          "export again"]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
            ModelBundle.load(out, overrides={"cmvn-silence-weight": "0"})
        (warning,) = [r.getMessage() for r in caplog.records]
        assert "calibrated on decodes carrying the online-CMVN stats with silence frames weighted 1 (" in warning
        assert "as the model was trained" not in warning and "set --cmvn-silence-weight 1 " in warning


def test_offline_pipelines_keep_their_dict_and_old_dicts_load():
    """An offline pipeline's dict has no online-CMVN keys (so files written now load in older
    kaldilite), and a dict written before cmvn 'online' existed loads unchanged."""
    from kaldilite.errors import InputError
    from kaldilite.feat.pipeline import FeaturePipeline

    old = {"cmvn": "speaker", "norm_vars": False, "delta_order": 2, "delta_window": 2, "splice_left": 0,
           "splice_right": 0, "transform": None}
    pipeline = FeaturePipeline.from_header(old, {})
    assert pipeline.to_dict() == old
    stats = np.array([[10.0, 20.0, 5.0], [30.0, 90.0, 0.0]])
    online = FeaturePipeline(cmvn="online", online_cmvn_stats=stats, online_cmvn_options={"cmn_window": 700})
    data, arrays = online.to_header("pipeline_")
    again = FeaturePipeline.from_header(data, arrays)
    assert again == online and again.online_cmvn_opts().cmn_window == 700
    with pytest.raises(InputError, match="online_cmvn_stats"):
        FeaturePipeline(cmvn="speaker", online_cmvn_stats=stats)


def test_a_subset_decoded_with_the_history_and_its_weights_is_normalized_as_within_it(online_setup,
                                                                                       garbage_graph_dir, tmp_path):
    """run.sh's held-out decodes: a subset of the data dir (two of jackson's files), each decoded with
    --online-cmvn-history DATA --online-cmvn-history-weights DECODE_OF_DATA, scores exactly as in the
    decode of the whole data dir (its best paths decided the silence frames every file carried)."""
    from kaldilite.cli import cli
    from kaldilite.io.tables import read_vectors

    data_dir, bundle_dir, _ = online_setup
    whole = _scores(bundle_dir, _decode_commands(online_setup, garbage_graph_dir, tmp_path / "whole"))
    weights = dict(read_vectors(str(tmp_path / "whole/cmvn_weights.1.ark")))
    assert sorted(weights) == sorted(whole)
    # the weighting is real: silence frames (weight 0: FSDD's clips are trimmed, one has a pause) and speech (1)
    assert set(np.unique(np.concatenate(list(weights.values())))) == {0.0, 1.0}
    subset = tmp_path / "subset"
    subset.mkdir()
    keep = ["jackson-2_jackson_1", "jackson-9_jackson_2"]
    for name in ("wav.scp", "utt2spk", "feats.scp", "cmvn.scp", "text"):
        lines = (data_dir / name).read_text().splitlines()
        (subset / name).write_text("".join(f"{line}\n" for line in lines if line.split()[0] in keep + ["jackson"]))
    (subset / "spk2utt").write_text(f"jackson {' '.join(keep)}\n")
    history = ["--online-cmvn-history", str(data_dir)]
    part = _scores(bundle_dir, _decode_commands(
        online_setup, garbage_graph_dir, tmp_path / "part", data=subset,
        options=history + ["--online-cmvn-history-weights", str(tmp_path / "whole")]))
    assert part == {u: whole[u] for u in keep}
    # without the history's decode: refused, naming the option
    bundle, model = bundle_dir, online_setup[2]
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--online-cmvn", str(bundle / "global_cmvn.stats"),
                                      *history, "--model", str(model), str(garbage_graph_dir), str(subset),
                                      str(tmp_path / "refused")])
    assert result.exit_code != 0 and "--online-cmvn-history-weights" in str(result.exception or result.output)
    # the whole decode recorded the carry its weights were decided under (decode-commands' defaults), and a part
    # decoded under another carry is refused before any job, naming both
    carry = (tmp_path / "whole/cmvn_carry.conf").read_text().splitlines()
    assert [line for line in carry if not line.startswith("#")] == ["--online-cmvn-order-seed=0",
                                                                    "--online-cmvn-silence-weight=0"]
    assert not any(p.name == "cmvn_carry.conf" for p in (tmp_path / "part").iterdir())  # (it decided no weights)
    for other in (["--online-cmvn-order-seed", "5"], ["--online-cmvn-silence-weight", "0.5"]):
        result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--online-cmvn",
                                          str(bundle / "global_cmvn.stats"), *history, "--online-cmvn-history-weights",
                                          str(tmp_path / "whole"), *other, "--model", str(model),
                                          str(garbage_graph_dir), str(subset), str(tmp_path / "other_carry")])
        message = str(result.exception)
        assert result.exit_code != 0 and "decided with --online-cmvn-order-seed 0 --online-cmvn-silence-weight 0, " \
            "this decode carries with " in message and " ".join(other) in message, result.output
        assert not (tmp_path / "other_carry/measures.jsonl").exists()
