"""export-model ships the online-CMVN carry its rejection rule was calibrated with.

The rule's threshold holds for decodes that carry a speaker's CMVN stats from clip to clip as its
calibration decodes did; decode-commands records how they did in DECODE_DIR/cmvn_carry.conf, and the
rule names DECODE_DIR (calibrate-rejection's calibration.decode_dir, relative to the work dir it ran in).
The bundle's conf/online.conf then says that --cmvn-silence-weight, and the recognizer built from the
bundle carries with it: checked by its effect, the carried stats' frame count after a word between two
pauses, against a hand count of the stream's frames (weight 1: every frame, Kaldi's framing formula) and
the word's frames alone (weight 0). A rule without the record (an old decode dir, a dir not found, the
default rule) leaves the online config's weight, as before the record. (The message when the model was
trained with another weight: tests/online/test_online_cmvn_decode.py, which trains such a model.)
"""

import json
import logging
import os

import numpy as np
import pytest
from online_helpers import MFCC_CONF, fsdd, pause


def _rule(path, decode_dir):
    """A rule file at `path` calibrated (so it says) on `decode_dir`, as calibrate-rejection writes it."""
    from kaldilite.decode.rejection import RejectionRule

    path.parent.mkdir(parents=True, exist_ok=True)
    RejectionRule(calibration={"decode_dir": str(decode_dir)}).save(path)
    return path


def _experiment(tmp_path, weight):
    """WORK/exp/mono/graph_commands/rejection.json calibrated on exp/mono/decode_dev (as recorded: relative to WORK,
    which is not the current dir), whose cmvn_carry.conf records `weight` (None: no record)."""
    from kaldilite.feat.cmvn import write_cmvn_carry

    decode = tmp_path / "work/exp/mono/decode_dev"
    decode.mkdir(parents=True)
    if weight is not None:
        write_cmvn_carry(decode, 0, weight)
    return _rule(tmp_path / "work/exp/mono/graph_commands/rejection.json", "exp/mono/decode_dev"), decode


def _export(digits_system, commands_graph_dir, out, rule, online_config=None):
    from kaldilite.online.bundle import export_model

    return export_model(digits_system / "exp/mono", commands_graph_dir, out, mfcc_config=MFCC_CONF,
                        data_dir=digits_system / "data/train", lang_dir=commands_graph_dir.parent / "lang",
                        rejection=rule, online_config=online_config, check_features=False)


def _weight_line(bundle_dir):
    return [line for line in (bundle_dir / "conf/online.conf").read_text().splitlines()
            if line.startswith("--cmvn-silence-weight=")]


def _carried_frames(bundle, fsdd_dir):
    """(frames the recognizer carried after a word between two pauses, the stream's frames by hand, the word's)."""
    from kaldilite.online.recognizer import OnlineRecognizer

    audio = np.concatenate([pause(0.3, 1), fsdd(fsdd_dir, "2_jackson_1"), pause(1.5, 2)])
    recognizer = OnlineRecognizer(bundle)
    results = recognizer.accept(audio) + recognizer.input_finished()
    assert [r.text for r in results] == ["two"]
    frame = bundle.mfcc_opts.frame_opts
    rate = frame.sample_frequency
    assert frame.snip_edges
    window, shift = int(rate * frame.frame_length / 1000), int(rate * frame.frame_shift / 1000)
    by_hand = 1 + (len(audio) - window) // shift  # Kaldi's NumFrames with --snip-edges=true
    word = round(results[0].end * rate / shift) - round(results[0].start * rate / shift)
    return recognizer.cmvn_state.speaker_stats[0, -1], by_hand, word


@pytest.mark.parametrize("weight", [1.0, 0.0])
def test_the_bundle_carries_the_weight_its_rule_was_calibrated_with(digits_system, commands_graph_dir, fsdd_dir,
                                                                    tmp_path, caplog, weight):
    from kaldilite.online.bundle import ModelBundle

    rule, decode = _experiment(tmp_path, weight)
    # the online config says the other weight: the calibration's wins
    other = tmp_path / "online.conf"
    other.write_text(f"--cmvn-silence-weight={1 - weight:g}\n")
    out = _export(digits_system, commands_graph_dir, tmp_path / "bundle", rule, online_config=other)
    assert _weight_line(out) == [f"--cmvn-silence-weight={weight:g}"]
    assert json.loads((out / "bundle.json").read_text())["from"]["cmvn_carry"] == str(decode / "cmvn_carry.conf")
    caplog.clear()  # (export's warning: the hand-made rule records no model, tests/online/test_bundle_decoded_with.py)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        bundle = ModelBundle.load(out)
    assert bundle.online_opts.cmvn_silence_weight == weight and caplog.text == ""
    carried, by_hand, word = _carried_frames(bundle, fsdd_dir)
    if weight == 1.0:
        assert carried == by_hand  # every frame of the stream, the pauses' too
    else:
        assert carried == word and word < by_hand / 3  # the word's frames only


def test_decoding_with_another_weight_than_the_calibration_warns_in_one_line(digits_system, commands_graph_dir,
                                                                             tmp_path, caplog):
    from kaldilite.online.bundle import ModelBundle

    rule, decode = _experiment(tmp_path, 1.0)
    out = _export(digits_system, commands_graph_dir, tmp_path / "bundle", rule)
    caplog.clear()  # (export's warning: the hand-made rule records no model)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        bundle = ModelBundle.load(out, overrides={"cmvn-silence-weight": "0"})
    assert bundle.online_opts.cmvn_silence_weight == 0.0  # the user's override is obeyed
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in warning and warning.startswith(f"{out}: decodes with --cmvn-silence-weight 0 ")
    assert f"silence frames weighted 1 ({decode / 'cmvn_carry.conf'}; bundle.json)" in warning
    assert warning.endswith("the threshold does not hold; set --cmvn-silence-weight 1 unless that is the point")


def test_a_hand_edited_weight_or_no_carry_is_warned_and_an_old_bundle_keeps_its_config(digits_system,
                                                                                       commands_graph_dir, tmp_path,
                                                                                       caplog):
    """bundle.json records the weight the rule was calibrated with: conf/online.conf edited by hand to another is
    warned as an override is (it was taken as the calibration's), and so is --carry-cmvn=false (each clip from the
    prior: not how the calibration decodes normalized). A bundle from before the record keeps conf/online.conf's."""
    from kaldilite.online.bundle import ModelBundle

    rule, decode = _experiment(tmp_path, 1.0)
    out = _export(digits_system, commands_graph_dir, tmp_path / "bundle", rule)
    caplog.clear()  # (export's warning: the hand-made rule records no model)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert not ModelBundle.load(out, overrides={"carry-cmvn": "false"}).online_opts.carry_cmvn
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in warning and warning.startswith(f"{out}: decodes each utterance from the online-CMVN prior "
                                                      f"(--carry-cmvn=false) but ")
    assert f"({decode / 'cmvn_carry.conf'}): the threshold does not hold" in warning
    assert json.loads((out / "bundle.json").read_text())["from"]["cmvn_silence_weight"] == 1.0
    conf = out / "conf/online.conf"
    conf.write_text(conf.read_text().replace("--cmvn-silence-weight=1\n", "--cmvn-silence-weight=0\n"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert ModelBundle.load(out).online_opts.cmvn_silence_weight == 0.0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{out}: decodes with --cmvn-silence-weight 0 but ") and "weighted 1 " in warning
    conf.write_text(conf.read_text().replace("--cmvn-silence-weight=0\n", "--cmvn-silence-weight=1\n"))
    # a bundle exported before bundle.json recorded the weight: conf/online.conf's is the calibration's, as before
    info = json.loads((out / "bundle.json").read_text())
    del info["from"]["cmvn_silence_weight"]
    (out / "bundle.json").write_text(json.dumps(info))
    conf.write_text(conf.read_text().replace("--cmvn-silence-weight=1\n", "--cmvn-silence-weight=0\n"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert ModelBundle.load(out).online_opts.cmvn_silence_weight == 0.0
    assert caplog.text == ""


def test_without_the_record_the_online_configs_weight_stays(digits_system, commands_graph_dir, tmp_path, monkeypatch):
    from kaldilite.errors import InputError
    from kaldilite.online.bundle import calibrated_cmvn_carry

    config = tmp_path / "online.conf"
    config.write_text("--cmvn-silence-weight=0.5\n")
    rule, decode = _experiment(tmp_path, None)  # a decode dir from before the record
    out = _export(digits_system, commands_graph_dir, tmp_path / "bundle", rule, online_config=config)
    assert _weight_line(out) == ["--cmvn-silence-weight=0.5"]
    assert "cmvn_carry" not in json.loads((out / "bundle.json").read_text())["from"]
    from kaldilite.decode.rejection import RejectionRule

    loaded = RejectionRule.load(rule)
    # the decode dir not found (beside the rule nor from here), the uncalibrated default rule: no carry
    elsewhere = _rule(tmp_path / "copied/rejection.json", "exp/mono/decode_dev")
    assert calibrated_cmvn_carry(RejectionRule.load(elsewhere), str(elsewhere)) is None
    assert calibrated_cmvn_carry(loaded, "default") is None
    # as recorded, from the work dir the calibration ran in (a rule not beside its decode dir)
    from kaldilite.feat.cmvn import write_cmvn_carry

    write_cmvn_carry(decode, 3, 0.25)
    monkeypatch.chdir(tmp_path / "work")
    assert calibrated_cmvn_carry(RejectionRule.load(elsewhere), str(elsewhere)) == (
        0.25, decode.relative_to(tmp_path / "work") / "cmvn_carry.conf")
    assert os.path.samefile(calibrated_cmvn_carry(loaded, str(rule))[1], decode / "cmvn_carry.conf")
    # beside a rule named relative to here: the record named so too (as run.sh's bundle.json gives its sources)
    assert calibrated_cmvn_carry(loaded, "exp/mono/graph_commands/rejection.json") == (
        0.25, decode.relative_to(tmp_path / "work") / "cmvn_carry.conf")
    # a record without the weight: refused in one line, naming the file
    (decode / "cmvn_carry.conf").write_text("--online-cmvn-order-seed=0\n")
    with pytest.raises(InputError) as refused:
        calibrated_cmvn_carry(loaded, str(rule))
    assert str(refused.value).startswith(f"{decode / 'cmvn_carry.conf'}: no --online-cmvn-silence-weight line; ")


def test_the_record_is_found_from_inside_the_graph_dir_and_a_lost_or_mixed_calibration_warns(tmp_path, monkeypatch,
                                                                                              caplog):
    """export-model run in the rule's graph dir (`--rejection rejection.json`, or GRAPH_DIR `.`): the rule's
    experiment dir is `..`, not `.` (the record was missed, and the bundle silently kept the config's weight). A
    decode dir found nowhere, or a set pooled with it (calibrate-rejection --also) that recorded another weight,
    leaves a bundle whose threshold may not hold: one warning line each."""
    from pathlib import Path

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.feat.cmvn import write_cmvn_carry
    from kaldilite.online.bundle import calibrated_cmvn_carry

    rule, decode = _experiment(tmp_path, 1.0)
    loaded = RejectionRule.load(rule)
    monkeypatch.chdir(rule.parent)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert calibrated_cmvn_carry(loaded, "rejection.json") == (1.0, Path("../decode_dev/cmvn_carry.conf"))
        assert calibrated_cmvn_carry(loaded, "./rejection.json") == (1.0, Path("../decode_dev/cmvn_carry.conf"))
    assert caplog.records == []
    # found neither beside the rule nor from here
    lost = _rule(tmp_path / "copied/rejection.json", "exp/mono/decode_dev")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert calibrated_cmvn_carry(RejectionRule.load(lost), str(lost)) is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in warning
    assert warning.startswith(f"{lost}: calibrated on exp/mono/decode_dev, found neither beside the rule "
                              f"(in {tmp_path}) nor from the current dir: ")
    # pooled with a set decoded with weight 0 (warned), and with one that recorded no carry (as run.sh's held-out
    # commands, decoded after dev's history: not warned)
    caplog.clear()
    for name, weight in (("decode_oov", 0.0), ("decode_heldout", None)):
        (decode.parent / name).mkdir()
        if weight is not None:
            write_cmvn_carry(decode.parent / name, 0, weight)
    RejectionRule(calibration={"decode_dir": "exp/mono/decode_dev", "also": [
        ["data/heldout", "exp/mono/decode_heldout"], ["data/oov", "exp/mono/decode_oov"]]}).save(rule)
    with caplog.at_level(logging.WARNING, logger="kaldilite.online.bundle"):
        assert calibrated_cmvn_carry(RejectionRule.load(rule), str(rule)) == (1.0, decode / "cmvn_carry.conf")
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning == (f"{rule}: calibrated on {decode} (online-CMVN silence weight 1) pooled with "
                       f"{decode.parent / 'decode_oov'} (weight 0): the bundle carries 1, which holds for part of the "
                       "pool only; re-decode both with one --online-cmvn-silence-weight and re-calibrate")
