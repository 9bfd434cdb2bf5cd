"""A rule on phone-level scores decides live exactly as on decode-commands --phone-scores' measures.

The independent answer for the live recognizer is the batch path (and the other way round): the
same FSDD files, decoded by decode-commands --phone-scores --online-cmvn into measures.jsonl and
streamed one by one through `OnlineRecognizer` (endpointing off; each speaker's files in the order
decode-commands carried their online CMVN), must give the same label and the same phone-level score
under the bundle's rule.
"""

import shutil

import numpy as np
from click.testing import CliRunner

from test_online_cmvn_decode import LATTICE_BEAM, _fed_in_order, garbage_graph_dir, online_setup  # noqa: F401


def test_live_phone_scores_equal_decode_commands_phone_scores(online_setup, garbage_graph_dir, tmp_path):  # noqa: F811
    from kaldilite.cli import cli
    from kaldilite.decode.rejection import RULE_FILE, RejectionRule
    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.online.bundle import ModelBundle
    from kaldilite.online.recognizer import OnlineRecognizer
    from kaldilite.score.commands import read_measures

    data_dir, bundle_dir, model = online_setup
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--lattice-beam", str(LATTICE_BEAM),
                                      "--phone-scores", "--phone-llr",
                                      "--online-cmvn", str(bundle_dir / "global_cmvn.stats"),
                                      "--online-cmvn-config", str(bundle_dir / "conf/online_cmvn.conf"),
                                      "--model", str(model), str(garbage_graph_dir), str(data_dir),
                                      str(tmp_path / "decode")])
    assert result.exit_code == 0, result.output
    measures = read_measures(tmp_path / "decode/measures.jsonl")
    data = DataDir.load(data_dir)
    for score in ("phone_llr_min", "gop_min"):
        rule = RejectionRule(score=score, threshold=-1e9)  # accept every command: compare scores, not thresholds
        batch = {u: rule.decide_measures(m, n) for u, (m, n) in measures.items()}
        bundle_copy = tmp_path / f"bundle_{score}"
        shutil.copytree(bundle_dir, bundle_copy)
        rule.save(bundle_copy / RULE_FILE)
        # decode-commands' default carry is decode-online's: each speaker's files in the order of
        # --online-cmvn-order-seed 0, the silence of each file's best path weighted 0
        bundle = ModelBundle.load(bundle_copy, overrides={"do-endpointing": "false", "lattice-beam": LATTICE_BEAM})
        live = {}
        for speaker, utts in _fed_in_order(data, 0).items():
            recognizer = OnlineRecognizer(bundle)
            for utt in utts:
                recognizer.new_stream(utt)
                results = recognizer.accept(read_audio(data.wav_scp[utt])) + recognizer.input_finished()
                assert len(results) == 1, (utt, results)
                live[utt] = results[0]
        accepted = [u for u in live if batch[u].accepted and np.isfinite(batch[u].score)]
        assert len(accepted) >= 3  # commands with phone scores computed: the comparison is not vacuous
        assert [live[u].text for u in live] == [batch[u].label for u in live]
        np.testing.assert_allclose([live[u].score for u in accepted], [batch[u].score for u in accepted],
                                   rtol=1e-4, atol=1e-3)
        assert len({round(batch[u].score, 3) for u in accepted}) > 1  # scores differ between utterances


def test_decode_commands_phone_scores_without_the_graphs_silence_list_fail_before_decoding(  # noqa: F811
        online_setup, garbage_graph_dir, tmp_path):
    """The phone scores leave silence phones out: without the graph's list they must not quietly
    count silence as a command phone (a different score), but say what is missing."""
    from kaldilite.cli import cli

    data_dir, _, model = online_setup
    graph = tmp_path / "graph"
    shutil.copytree(garbage_graph_dir, graph)
    (graph / "phones/silence.int").unlink()
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--phone-scores", "--model", str(model),
                                      str(graph), str(data_dir), str(tmp_path / "decode")])
    assert result.exit_code != 0
    assert "silence.int" in str(result.output) + str(result.exception)
    assert not (tmp_path / "decode/measures.jsonl").exists()


def test_decode_commands_rule_scores_turn_on_the_phone_scores_the_rule_reads(  # noqa: F811
        online_setup, garbage_graph_dir, tmp_path):
    """--rule-scores NAMES (what run.sh passes: its rules' scores and features) decodes exactly as the
    flags those names need: logistic(llr_total, gop_mean) as --phone-scores, a ratio (phone_llr_min)
    as --phone-scores --phone-llr; an unknown name is a usage error."""
    import json

    from kaldilite.cli import cli

    data_dir, _, model = online_setup

    def measures(out, *options):
        result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", *options, "--model", str(model),
                                          str(garbage_graph_dir), str(data_dir), str(tmp_path / out)])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (tmp_path / out / "measures.jsonl").read_text().splitlines()]

    gop_only = measures("gop", "--rule-scores", "logistic,llr_total,gop_mean")
    assert gop_only == measures("gop_flags", "--phone-scores")
    assert any(m["gop_mean"] is not None for m in gop_only) and all(m["phone_llr_min"] is None for m in gop_only)
    ratios = measures("llr", "--rule-scores", "llr_total,phone_llr_min")
    assert ratios == measures("llr_flags", "--phone-scores", "--phone-llr")
    assert any(m["phone_llr_min"] is not None for m in ratios)
    result = CliRunner().invoke(cli, ["decode-commands", "--rule-scores", "llr_total,gop_avg", "--model", str(model),
                                      str(garbage_graph_dir), str(data_dir), str(tmp_path / "bad")])
    assert result.exit_code == 2 and "unknown score(s) gop_avg" in result.output
