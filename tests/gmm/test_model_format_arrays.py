"""Model files keep their matrices as arrays (GMM format 2, nnet2 format 5) and still read the older
layout, where the feature pipeline's transform was nested JSON lists in the header.

The old files are made here by the old writer's layout: the header's pipeline dicts carry the
matrix as lists (`FeaturePipeline.to_dict`, what versions 1 and 4 wrote), the arrays do not, and
the version is the old one. Each must load to the same model as the new file, bit for bit.
"""

import json

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.feat.pipeline import FeaturePipeline
from kaldilite.gmm import AmDiagGmm, load_model, read_model_header, save_model
from kaldilite.gmm.model import read_model_pipeline
from kaldilite.hmm import Topology, TransitionModel, monophone_tree

TOPO = """<Topology> <TopologyEntry> <ForPhones> 1 2 3 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 </State> </TopologyEntry> </Topology>"""


def _tm():
    topo = Topology.from_text(TOPO)
    return TransitionModel(topo, monophone_tree([[1], [2, 3]], topo))


def _arrays(path):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(bytes(arrays.pop("header")).decode()), arrays


def _rewrite_in_old_layout(path, out, version, pipeline_keys):
    """`path` rewritten as the pre-array writer wrote it: the transforms as lists in the JSON."""
    header, arrays = _arrays(path)
    for key in pipeline_keys:
        pipeline = header[key]
        if pipeline is not None and isinstance(pipeline.get("transform"), dict):
            pipeline["transform"] = arrays.pop(pipeline["transform"]["array"]).tolist()
    header["version"] = version
    with open(out, "wb") as handle:  # a handle: np.savez would append .npz to a path
        np.savez(handle, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return out


@pytest.fixture
def lda_gmm_file(tmp_path):
    tm = _tm()
    rng = np.random.default_rng(3)
    am = AmDiagGmm(rng.standard_normal((tm.num_pdfs, 3)), np.ones((tm.num_pdfs, 3)), np.zeros(tm.num_pdfs),
                   np.arange(tm.num_pdfs + 1))
    # a 3 x 13 affine LDA+MLLT of 4-dim features spliced +-1: values no short decimal holds exactly
    pipeline = FeaturePipeline(cmvn="speaker", splice_left=1, splice_right=1, transform=rng.standard_normal((3, 13)))
    path = tmp_path / "final.mdl"
    save_model(path, tm, am, pipeline, extra={"transform": "LDA+MLLT (final.mat)", "raw_feature_dim": 4})
    return path, pipeline


def test_the_gmm_header_names_the_transform_array_instead_of_holding_the_matrix(lda_gmm_file):
    path, pipeline = lda_gmm_file
    header, arrays = _arrays(path)
    assert header["version"] == 2
    assert header["pipeline"]["transform"] == {"array": "pipeline_transform", "shape": [3, 13]}
    np.testing.assert_array_equal(arrays["pipeline_transform"], pipeline.transform)
    _, _, loaded, _ = load_model(path)
    assert loaded == pipeline and loaded.transform.dtype == np.float64
    assert read_model_pipeline(path) == pipeline


def test_a_version_1_gmm_file_with_the_transform_in_json_loads_to_the_same_model(lda_gmm_file, tmp_path):
    path, pipeline = lda_gmm_file
    old = _rewrite_in_old_layout(path, tmp_path / "old.mdl", 1, ["pipeline"])
    assert isinstance(read_model_header(old)["pipeline"]["transform"], list)
    new_tm, new_am, new_pipeline, _ = load_model(path)
    old_tm, old_am, old_pipeline, _ = load_model(old)
    np.testing.assert_array_equal(old_pipeline.transform, new_pipeline.transform)  # JSON floats round-trip exactly
    assert old_pipeline == new_pipeline == pipeline == read_model_pipeline(old)
    np.testing.assert_array_equal(old_am.means, new_am.means)
    assert old_am.feature_hint == new_am.feature_hint == ("4-dim raw features + speaker CMVN + splice -1/+1 + "
                                                         "3 x 13 LDA+MLLT (final.mat)")


def test_a_model_without_a_transform_keeps_version_1_for_older_readers(tmp_path):
    tm = _tm()
    am = AmDiagGmm(np.zeros((tm.num_pdfs, 2)), np.ones((tm.num_pdfs, 2)), np.zeros(tm.num_pdfs),
                   np.arange(tm.num_pdfs + 1))
    save_model(tmp_path / "m.mdl", tm, am, FeaturePipeline(delta_order=2))
    header, arrays = _arrays(tmp_path / "m.mdl")
    assert header["version"] == 1 and header["pipeline"]["transform"] is None and "pipeline_transform" not in arrays
    assert read_model_pipeline(tmp_path / "m.mdl") == FeaturePipeline(delta_order=2)


def test_a_transform_array_missing_from_the_file_is_a_corrupt_model(lda_gmm_file, tmp_path):
    path, _ = lda_gmm_file
    header, arrays = _arrays(path)
    del arrays["pipeline_transform"]
    with open(tmp_path / "bad.mdl", "wb") as handle:
        np.savez(handle, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    with pytest.raises(InputError, match="bad.mdl: corrupt model file .*pipeline_transform"):
        load_model(tmp_path / "bad.mdl")
    with pytest.raises(InputError, match="stored as an array"):
        FeaturePipeline.from_dict(header["pipeline"])


def test_an_nnet2_file_of_version_4_reads_as_the_version_5_file(tmp_path):
    from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model, save_nnet_model
    from kaldilite.nnet.network import Nnet

    tm = _tm()
    rng = np.random.default_rng(7)
    fmllr_pipeline = FeaturePipeline(cmvn="speaker", splice_left=1, splice_right=1, transform=rng.random((3, 12)))
    pipeline = FeaturePipeline(cmvn="none", splice_left=2, splice_right=2, transform=rng.standard_normal((15, 16)))
    nnet = Nnet.pnorm(15, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    model = NnetAcousticModel(tm, nnet, rng.dirichlet(np.ones(tm.num_pdfs)), pipeline, 4, "mfcc",
                              fmllr_pipeline=fmllr_pipeline, prior_scale=0.5)
    save_nnet_model(tmp_path / "new.mdl", model)
    header, arrays = _arrays(tmp_path / "new.mdl")
    assert header["version"] == 5 and sorted(k for k in arrays if "pipeline" in k) == [
        "fmllr_pipeline_transform", "pipeline_transform"]
    assert len(json.dumps(header)) < 4000  # options and shapes only
    old = _rewrite_in_old_layout(tmp_path / "new.mdl", tmp_path / "old.mdl", 4, ["pipeline", "fmllr_pipeline"])
    new_model, old_model = load_nnet_model(tmp_path / "new.mdl"), load_nnet_model(old)
    assert old_model.pipeline == new_model.pipeline == pipeline
    assert old_model.fmllr_pipeline == new_model.fmllr_pipeline == fmllr_pipeline
    assert old_model.prior_scale == new_model.prior_scale == 0.5
    x = rng.standard_normal((6, 15)).astype(np.float32)
    np.testing.assert_array_equal(old_model.log_likelihoods(x), new_model.log_likelihoods(x))
