"""`load_transition_model`: the transition model of a model file without its GMMs (what mkgraph reads)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.gmm import AmDiagGmm, load_model, load_transition_model, save_model
from kaldilite.hmm import Topology, TransitionModel, monophone_tree

TOPO = """<Topology> <TopologyEntry> <ForPhones> 1 2 3 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 </State> </TopologyEntry> </Topology>"""


@pytest.fixture
def model_file(tmp_path):
    topo = Topology.from_text(TOPO)
    tm = TransitionModel(topo, monophone_tree([[1], [2, 3]], topo))
    tm.log_probs[1:] = np.log(np.linspace(0.1, 0.9, tm.num_transition_ids))  # not the topology's defaults
    num_pdfs = tm.num_pdfs
    am = AmDiagGmm(np.arange(num_pdfs * 3.0).reshape(num_pdfs, 3), np.ones((num_pdfs, 3)), np.zeros(num_pdfs),
                   np.arange(num_pdfs + 1))
    path = tmp_path / "final.mdl"
    save_model(path, tm, am, {"cmvn": "speaker"})
    return path, tm


def test_the_transition_model_alone_is_the_one_load_model_reads(model_file):
    path, tm = model_file
    alone = load_transition_model(path)
    full, _, _, _ = load_model(path)
    assert alone.tuples == full.tuples == tm.tuples and alone.topo == tm.topo and alone.num_pdfs == 4
    np.testing.assert_array_equal(alone.log_probs, full.log_probs)
    np.testing.assert_array_equal(alone.log_probs, tm.log_probs)


def test_reading_the_transitions_imports_neither_the_gmm_nor_the_feature_code(model_file):
    path, _ = model_file
    code = ("import sys\nfrom kaldilite.gmm.model import load_transition_model\n"
            f"tm = load_transition_model({str(path)!r})\n"
            "print(tm.num_pdfs, sorted(m for m in sys.modules\n"
            "                          if m in ('kaldilite.gmm.am', 'kaldilite.feat.pipeline')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(None, 1) == ["4", "[]\n"]


def test_the_same_refusals_as_load_model(model_file, tmp_path):
    path, _ = model_file
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays["header"]).decode())
    nnet = tmp_path / "nnet.mdl"
    with open(nnet, "wb") as handle:  # a handle: np.savez would append .npz to a path
        nnet_header = json.dumps({**header, "model_type": "nnet2"}).encode()
        np.savez(handle, **{**arrays, "header": np.frombuffer(nnet_header, np.uint8)})
    for load in (load_model, load_transition_model):
        with pytest.raises(InputError, match="'nnet2' model, not a GMM model"):
            load(nnet)
    broken = tmp_path / "broken.mdl"
    with open(broken, "wb") as handle:
        np.savez(handle, **{k: v for k, v in arrays.items() if k != "tm_log_probs"})
    for load in (load_model, load_transition_model):
        with pytest.raises(InputError, match="corrupt model file"):
            load(broken)
