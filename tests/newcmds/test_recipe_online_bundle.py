"""The commands recipe's stage 11: the online bundle of its best online model decides with the
rule stage 10 calibrated on that model's decodes through the online front end (the session
system: mono, trained on per-speaker CMVN, so stage 10 decodes it again with online CMVN into
exp/mono_online_cmvn and calibrates there).

What this recipe-level test guards is the recipe's layout: export-model, given the rule by a path relative to
the work dir, finds its calibration decodes' records beside it (the CMVN carry, cmvn_carry.conf; the model and
graph, decoded_with.json) and ships what they say. The run's silence weight is run.sh's default 0, decode-online's
default too, so the weight's equality alone would hold without the record: the record's use is shown by
from.cmvn_carry here, the value by export-model with weights 0 and 1 and their effect on the carried stats
(tests/online/test_bundle_cmvn_carry.py), and run.sh's knob reaching every decode through online CMVN by
tests/recipes/test_commands_online_cmvn_stamps.py; another full recipe run for weight 1 would add minutes and
nothing those do not show."""

import hashlib
import json

from newcmds_helpers import MFCC_CONF, run_recipe


def test_the_recipes_bundle_carries_its_models_graph_and_calibrated_rule(commands_system):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.feat.cmvn import read_cmvn_carry
    from kaldilite.graph.compiled import CompiledFst
    from kaldilite.online.bundle import ModelBundle

    bundle = ModelBundle.load(commands_system / "exp/mono_online")
    rule = RejectionRule.load(commands_system / "exp/mono_online_cmvn/graph_commands/rejection.json")
    assert rule.calibration["decode_dir"] == "exp/mono_online_cmvn/decode_dev"
    assert bundle.rejection == rule
    assert bundle.info["from"] == {"model": "exp/mono/final.mdl", "graph": "exp/mono/graph_commands",
                                   "data": "data/train_aug", "mfcc_config": str(MFCC_CONF),
                                   "rejection": "exp/mono_online_cmvn/graph_commands/rejection.json",
                                   "cmvn_carry": "exp/mono_online_cmvn/decode_dev/cmvn_carry.conf",
                                   "cmvn_silence_weight": bundle.online_opts.cmvn_silence_weight}
    # the bundle's decoder carries CMVN as the rule's calibration decodes did (decode-commands' record)
    _, calibrated_weight = read_cmvn_carry(commands_system / "exp/mono_online_cmvn/decode_dev", "re-decode")
    assert bundle.online_opts.cmvn_silence_weight == calibrated_weight
    graph = CompiledFst.load(commands_system / "exp/mono/graph_commands/HCLG.npz")
    assert (bundle.graph.num_states, bundle.graph.num_arcs) == (graph.num_states, graph.num_arcs)
    assert json.loads((commands_system / "exp/mono_online/bundle.json").read_text())["model_type"] == "gmm"
    # the rule names the model and graph its decodes were made with: the bundle's, by digest (hashlib here)
    recorded = rule.calibration["decoded_with"]
    assert (recorded["model"], recorded["graph"]) == ("exp/mono/final.mdl", "exp/mono/graph_commands")
    for path in (commands_system / "exp/mono_online/final.mdl", commands_system / "exp/mono/final.mdl"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded["model_sha256"]


def test_the_recipe_prints_how_to_decode_live_with_it(commands_system, tmp_path):
    from newcmds_helpers import copy_system

    work = copy_system(commands_system, tmp_path / "work")
    out = run_recipe(work, "--stage", "11")
    assert "up to date: exp/mono_online/.stamp" in out.stdout
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("Try it live (mono): ")]
    assert len(line) == 1 and f"decode-online --model {work}/exp/mono_online --mic" in line[0]
