"""Fixtures for the online tests: the digits monophone system and model bundles made from it.

The system is the digits recipe's speaker-independent build (the session fixture
`digits_system` in tests/conftest.py: the developer's build, or one made for the session).
Bundles are exported to temp dirs.
"""

import numpy as np
import pytest
from online_helpers import COMMANDS, FILLERS, MFCC_CONF, RATE, fsdd, pause


@pytest.fixture(scope="session")
def digits_bundle_dir(digits_system, tmp_path_factory):
    """Bundle for the recipe's own graph (all ten digits, no fillers)."""
    from kaldilite.online.bundle import export_model

    out = tmp_path_factory.mktemp("bundle") / "digits"
    export_model(digits_system / "exp/mono", digits_system / "exp/mono/graph", out, mfcc_config=MFCC_CONF,
                 data_dir=digits_system / "data/train")
    return out


@pytest.fixture(scope="session")
def digits_bundle(digits_bundle_dir):
    from kaldilite.online.bundle import ModelBundle

    return ModelBundle.load(digits_bundle_dir)


@pytest.fixture(scope="session")
def commands_graph_dir(digits_system, tmp_path_factory):
    """The digits monophone's graph for a command grammar: eight digits are commands, `five` and
    `nine` are fillers (GRAPH/words/fillers.txt); no calibrated rejection.json."""
    from kaldilite.gmm.model import load_model
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import ContextDependency
    from kaldilite.lang.grammar import make_grammar

    tmp = tmp_path_factory.mktemp("commands")
    (tmp / "commands.txt").write_text("\n".join(COMMANDS) + "\n")
    (tmp / "fillers.txt").write_text("\n".join(FILLERS) + "\n")
    make_grammar(tmp / "commands.txt", digits_system / "data/lang", tmp / "lang", fillers=tmp / "fillers.txt")
    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    tree = ContextDependency.read(digits_system / "exp/mono/tree")
    mkgraph(tmp / "lang", tmp / "graph", tm, tree)
    return tmp / "graph"


@pytest.fixture(scope="session")
def commands_bundle_dir(digits_system, commands_graph_dir):
    """Bundle for the command grammar, with the default (uncalibrated, confidence 0.5) rule."""
    from kaldilite.online.bundle import export_model

    out = commands_graph_dir.parent / "bundle"
    export_model(digits_system / "exp/mono", commands_graph_dir, out, mfcc_config=MFCC_CONF,
                 data_dir=digits_system / "data/train", lang_dir=commands_graph_dir.parent / "lang",
                 default_rejection=True)
    return out


@pytest.fixture(scope="session")
def commands_bundle(commands_bundle_dir):
    from kaldilite.online.bundle import ModelBundle

    return ModelBundle.load(commands_bundle_dir)




@pytest.fixture(scope="session")
def continuous_stream(fsdd_dir):
    """Commands and OOV words of one speaker separated by pauses: (waveform, [(expected, start, end)]).

    The words must be clear for any sound model: they are what the streaming, endpoint, resampling and
    dropped-audio tests are checked against. At the end of this stream, with the CMVN statistics of
    the words and pauses before it carried, "three" is misheard on ~2 of jackson's first 10 takes by a
    mono model, and WHICH two changes with any change of the training (takes 0 and 9 with the aligner's
    old min_active rule, 2 and 3 with Kaldi's, on models of equal WER): take 5 is heard with confidence
    1.00 by both, at 8 kHz, through 48 kHz and after the dropped "seven" (take 2 was used before)."""
    parts, expected, pos = [pause(0.5, 1)], [], int(0.5 * RATE)
    for k, (word, name) in enumerate([("two", "2_jackson_1"), ("<rejected>", "9_jackson_2"),
                                      ("seven", "7_jackson_3"), ("zero", "0_jackson_4"),
                                      ("<rejected>", "5_jackson_0"), ("three", "3_jackson_5")]):
        wave = fsdd(fsdd_dir, name)
        expected.append((word, pos / RATE, (pos + len(wave)) / RATE))
        parts += [wave, pause(0.8, k + 2)]
        pos += len(wave) + int(0.8 * RATE)
    return np.concatenate(parts), expected
