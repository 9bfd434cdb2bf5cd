"""The prior scale of an nnet2 model (train-nnet2 --prior-scale, nnet1's nnet-forward --prior-scale):
scores are log posterior - scale * log prior, worked by hand; the file keeps it; a model with the
whole prior is written exactly as before (format version 1), one with a scale as version 4."""

import json
import zipfile

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.feat.pipeline import FeaturePipeline
from kaldilite.hmm import Topology, TransitionModel, monophone_tree
from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model, save_nnet_model
from kaldilite.nnet.network import Nnet

TOPO = """<Topology>
<TopologyEntry>
<ForPhones> 1 2 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""


def tiny_model(prior_scale):
    topo = Topology.from_text(TOPO)
    tm = TransitionModel(topo, monophone_tree([[1], [2]], topo))
    rng = np.random.default_rng(0)
    nnet = Nnet.pnorm(3, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=8, pnorm_output_dim=4, rng=rng)
    nnet.components[-2].weight[...] = rng.standard_normal(nnet.components[-2].weight.shape)
    priors = np.array([0.8, 0.2])
    return NnetAcousticModel(tm, nnet, priors, FeaturePipeline(cmvn="none"), 3, "mfcc", prior_scale=prior_scale)


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.0])
def test_scores_are_log_posterior_minus_scaled_log_prior(scale, tmp_path):
    model = tiny_model(scale)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    post = model.nnet.posteriors(x).astype(np.float64)
    # two pdfs with priors 0.8 / 0.2: the second gains scale * log 4 over the first
    expected = np.log(post) - scale * np.log([0.8, 0.2])
    np.testing.assert_allclose(model.log_likelihoods(x), expected, rtol=1e-5, atol=1e-5)
    gap = model.log_likelihoods(x)[:, 1] - model.log_likelihoods(x)[:, 0]
    np.testing.assert_allclose(gap, np.log(post[:, 1] / post[:, 0]) + scale * np.log(4.0), rtol=1e-5, atol=1e-5)
    save_nnet_model(tmp_path / "m.mdl", model)
    with zipfile.ZipFile(tmp_path / "m.mdl") as archive:
        header = json.loads(bytes(np.load(archive.open("header.npy"))).decode())
    assert header["version"] == (1 if scale == 1.0 else 4)
    again = load_nnet_model(tmp_path / "m.mdl")
    assert again.prior_scale == scale
    np.testing.assert_array_equal(again.log_likelihoods(x), model.log_likelihoods(x))


def test_a_model_file_without_a_prior_scale_divides_by_the_whole_prior(tmp_path):
    model = tiny_model(1.0)
    save_nnet_model(tmp_path / "m.mdl", model)
    with zipfile.ZipFile(tmp_path / "m.mdl") as archive:
        arrays = {name[:-4]: np.load(archive.open(name)) for name in archive.namelist()}
    header = json.loads(bytes(arrays["header"]).decode())
    del header["prior_scale"]  # as written before prior scales existed
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(tmp_path / "old.mdl", "wb") as handle:
        np.savez(handle, **arrays)
    assert load_nnet_model(tmp_path / "old.mdl").prior_scale == 1.0


def test_a_prior_scale_outside_zero_to_one_is_refused():
    with pytest.raises(InputError, match="prior scale"):
        tiny_model(1.5)
