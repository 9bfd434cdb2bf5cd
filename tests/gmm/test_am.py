"""Diagonal GMM acoustic model: scoring vs scipy (float64 and float32, with error bounds), ML
update vs hand numbers, EM on a known mixture, the power rule for mixing up, accumulator sums,
the model file."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.gmm import AmDiagGmm, GmmAccumulators, load_model, save_model, segmented_logsumexp, split_targets
from kaldilite.hmm import Topology, TransitionModel, monophone_tree


def random_model(rng, gauss_per_pdf=(1, 3, 2), dim=5):
    g = sum(gauss_per_pdf)
    weights = np.concatenate([rng.dirichlet(np.ones(n)) for n in gauss_per_pdf])
    return AmDiagGmm(rng.normal(0, 2, (g, dim)), rng.uniform(0.3, 3.0, (g, dim)), np.log(weights),
                     np.concatenate([[0], np.cumsum(gauss_per_pdf)]))


def test_log_likelihoods_match_scipy_mixture_densities(rng):
    am = random_model(rng)
    feats = rng.normal(0, 2, (40, am.dim)).astype(np.float32)
    expected = np.empty((40, am.num_pdfs))
    for pdf in range(am.num_pdfs):
        lo, hi = am.pdf_offsets[pdf], am.pdf_offsets[pdf + 1]
        per_gauss = [am.log_weights[g] + multivariate_normal(am.means[g], np.diag(am.variances[g])).logpdf(feats)
                     for g in range(lo, hi)]
        expected[:, pdf] = logsumexp(np.stack(per_gauss), axis=0)
    got = am.log_likelihoods(feats)
    assert got.dtype == np.float32 and got.shape == (40, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    # far-away frames must not underflow to -inf (the log-sum-exp is shifted by the max)
    assert np.all(np.isfinite(am.log_likelihoods(np.full((2, am.dim), 1e3))))


def explicit_log_densities(am, feats):
    """(T x G) log(w_g N(x; mu_g, diag var_g)) in float64, straight from the density formula."""
    x = np.asarray(feats, np.float64)[:, None, :]
    quad = np.sum((x - am.means[None]) ** 2 / am.variances[None], axis=2)
    log_det = np.sum(np.log(2 * np.pi * am.variances), axis=1)
    return am.log_weights[None] - 0.5 * (log_det[None] + quad)


def test_segmented_logsumexp_matches_scipy_in_both_precisions(rng):
    # segments of 1..99 columns (a commands tri3b model has up to 99 Gaussians per pdf), values
    # spread over hundreds of nats so that most terms underflow and the peak shift matters
    counts = np.concatenate([[1, 2, 99], rng.integers(1, 40, 60)])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    values = rng.normal(-300, 150, (37, offsets[-1]))
    values[:, 5] = -1e4  # a term 10^4 nats below its segment's peak
    add = rng.normal(0, 20, offsets[-1])
    shifted = values + add
    expected = np.stack([logsumexp(shifted[:, lo:hi], axis=1) for lo, hi in zip(offsets[:-1], offsets[1:])], axis=1)
    got64 = segmented_logsumexp(values, offsets, add)
    assert got64.dtype == np.float64
    # float64: a few ulps of the inputs' magnitude (up to ~1e3 here, ulp 1e-13), results near 0 included
    np.testing.assert_allclose(got64, expected, rtol=4 * np.finfo(np.float64).eps, atol=1e-12)
    # float32: the reference takes the same float32 inputs; rounding the sum value + add costs
    # half an ulp of its magnitude, the float32 exp polynomial and the sum of <= 99 terms at most
    # a few eps relative to the sum (>= 1, so an absolute 1e-6 on its log), the final add half an ulp
    v32, a32 = values.astype(np.float32), add.astype(np.float32)
    sum32 = v32.astype(np.float64) + a32.astype(np.float64)
    expected32 = np.stack([logsumexp(sum32[:, lo:hi], axis=1) for lo, hi in zip(offsets[:-1], offsets[1:])], axis=1)
    got32 = segmented_logsumexp(v32, offsets, a32)
    assert got32.dtype == np.float32
    ulp = np.spacing(np.abs(expected32).astype(np.float32)).astype(np.float64)
    np.testing.assert_array_less(np.abs(got32 - expected32), 2 * ulp + 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segmented_logsumexp_exp_over_its_whole_input_range(dtype):
    # The compiled exp sees d = value - peak in [-inf, 0]: log(1 + e^d) against numpy's
    # logaddexp from just below 0 down past the clamp at -87 to far below (where e^d underflows).
    eps = np.finfo(dtype).eps
    d = np.concatenate([-np.geomspace(1e-9, 1e4, 4001), np.linspace(-90, 0, 4001), [0.0, -np.inf]]).astype(dtype)
    pairs = np.stack([np.zeros_like(d), d], axis=1)
    got = segmented_logsumexp(pairs, [0, 2])[:, 0]
    np.testing.assert_allclose(got, np.logaddexp(0, d.astype(np.float64)), rtol=0, atol=2 * eps)
    # A -inf term (a zero-weight Gaussian) adds nothing; a NaN makes its own frame's segment NaN and
    # leaves the other frames and segments alone (the loop runs SIMD over 37 frames, so NaNs sit in
    # vector lanes and in the remainder)
    offsets = [0, 3, 4, 7]
    values = np.random.default_rng(3).normal(-5, 3, (37, 7)).astype(dtype)
    values[:, 1] = -np.inf
    nan_frames = [0, 20, 36]
    values[nan_frames, 5] = np.nan
    expected = np.stack([logsumexp(values[:, lo:hi].astype(np.float64), axis=1)
                         for lo, hi in zip(offsets[:-1], offsets[1:])], axis=1)
    got = segmented_logsumexp(values, offsets)
    assert np.isnan(expected[nan_frames, 2]).all()
    np.testing.assert_allclose(got, expected, rtol=4 * eps, atol=4 * eps)  # NaN where expected is NaN


def test_log_likelihoods_of_a_realistic_model_within_float32_error_bound(rng):
    # dim 40 and up to 60 Gaussians per pdf, as the commands systems; features near the means
    gauss_per_pdf = rng.integers(1, 60, 12)
    am = random_model(rng, gauss_per_pdf=tuple(gauss_per_pdf), dim=40)
    feats = (am.means[rng.integers(0, am.num_gauss, 50)] + rng.normal(0, 1.5, (50, 40))).astype(np.float32)
    densities = explicit_log_densities(am, feats)
    offsets = am.pdf_offsets
    expected = np.stack([logsumexp(densities[:, lo:hi], axis=1) for lo, hi in zip(offsets[:-1], offsets[1:])], axis=1)
    np.testing.assert_allclose(am.log_likelihoods(feats, dtype=np.float64), expected, rtol=1e-12, atol=1e-9)
    # float32 scores a Gaussian by an 80-term dot product of [x, x^2] with [mu/var, -1/(2 var)]
    # plus a constant: its error is at most gamma_n * (sum of the terms' magnitudes) with
    # gamma_n = n eps / (1 - n eps), n = 80 products + the constant + rounding x and x^2 to
    # float32 (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). A pdf's
    # log-sum-exp moves by at most its worst Gaussian's error, plus the 1e-6 of the
    # float32 exp and sum.
    weights, gconst = am._scoring_matrices()
    x = feats.astype(np.float64)
    magnitude = np.abs(np.concatenate([x, x * x], axis=1)) @ np.abs(weights) + np.abs(gconst)
    n = 2 * am.dim + 3
    gamma = n * np.finfo(np.float32).eps / (1 - n * np.finfo(np.float32).eps)
    bound = np.stack([magnitude[:, lo:hi].max(axis=1) for lo, hi in zip(offsets[:-1], offsets[1:])], axis=1)
    bound = gamma * bound + 1e-6
    got = am.log_likelihoods(feats)
    assert got.dtype == np.float32
    np.testing.assert_array_less(np.abs(got - expected), bound)
    assert np.abs(got - expected).max() > 0  # float32 really was used (the bound is not vacuous)


def test_wrong_feature_dimension_names_both_dimensions(rng):
    am = random_model(rng)
    with pytest.raises(DimensionMismatchError, match="expects 5-dim features .*but got 13"):
        am.log_likelihoods(np.zeros((4, 13)))


def test_update_from_hand_statistics_with_floor_and_removal():
    am = AmDiagGmm(np.zeros((3, 2)), np.ones((3, 2)), np.log([1.0, 0.5, 0.5]), [0, 1, 3])
    accs = GmmAccumulators.for_model(am)
    # pdf 0: 4 frames at x = (1, 3), (3, 3) twice each -> mean (2, 3), var (1, 0 -> floor)
    accs.occupancy[0] = 4
    accs.first[0] = [8, 12]
    accs.second[0] = [2 * 1 + 2 * 9, 4 * 9]
    # pdf 1: Gaussian 1 has 40 frames, Gaussian 2 only 2 (< min occupancy 10): removed
    accs.occupancy[1:] = [40, 2]
    accs.first[1] = [40, -40]
    accs.second[1] = [80, 160]
    result = am.update(accs, min_gaussian_occupancy=3)
    np.testing.assert_allclose(am.means, [[2, 3], [1, -1]])
    np.testing.assert_allclose(am.variances, [[1, 0.001], [1, 3]])
    np.testing.assert_allclose(np.exp(am.log_weights), [1, 1])
    assert am.pdf_offsets.tolist() == [0, 1, 2]
    assert result["removed_gaussians"] == 1 and result["floored_elements"] == 1


def test_update_keeps_last_gaussian_of_pdf_without_data():
    am = AmDiagGmm(np.arange(6.0).reshape(3, 2), np.ones((3, 2)), np.log([1.0, 0.5, 0.5]), [0, 1, 3])
    accs = GmmAccumulators.for_model(am)
    accs.occupancy[0], accs.first[0], accs.second[0] = 20, [20, 20], [40, 40]
    am.update(accs)
    assert am.num_gauss_per_pdf().tolist() == [1, 1]
    np.testing.assert_allclose(am.means[1], [4, 5])  # the unseen pdf keeps its last Gaussian unchanged
    np.testing.assert_allclose(np.exp(am.log_weights), [1, 1])


def test_split_targets_follow_the_power_rule_by_hand():
    # occ^0.25 = 10, 6, 0; five splits go to the largest share occ^0.25 / n each time:
    # 10/1 -> pdf 0, 6/1 -> pdf 1, 10/2 -> pdf 0, 10/3 -> pdf 0, 6/2 -> pdf 1 (next would be 10/4)
    assert split_targets([10000, 1296, 0], 8, power=0.25, min_count=20).tolist() == [4, 3, 1]
    assert split_targets([10000, 1296, 0], 9, power=0.25, min_count=20).tolist() == [5, 3, 1]
    # min-count: pdf 0 (100 frames) stops at 4 Gaussians since 5 * 20 >= 100; the rest go to pdf 1
    assert split_targets([100, 1296], 20, power=0.25, min_count=20).tolist() == [4, 16]


def test_mixup_splits_heaviest_gaussian_and_keeps_the_mixture_mean(rng):
    am = AmDiagGmm(np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[1.0, 4.0], [1.0, 1.0]]), np.zeros(2), [0, 1, 2])
    am.mixup([10000, 1296], 5, power=0.25, perturb_factor=0.1, rng=rng)
    assert am.num_gauss_per_pdf().tolist() == [3, 2]
    w0 = np.exp(am.log_weights[:3])
    np.testing.assert_allclose(sorted(w0), [0.25, 0.25, 0.5])
    np.testing.assert_allclose(w0 @ am.means[:3], [0, 0], atol=1e-12)
    assert 0 < np.abs(am.means[:3]).max() < 1.0  # perturbed by 0.1 stddev-scaled noise
    np.testing.assert_allclose(am.variances[:3], [[1, 4]] * 3)


def test_em_recovers_a_known_mixture(rng):
    true_means = np.array([[-4.0, 0.0, 2.0], [0.0, 3.0, -2.0], [4.0, -1.0, 0.0]])
    true_vars = np.array([[1.0, 0.5, 2.0], [0.3, 1.0, 1.0], [2.0, 1.0, 0.5]])
    true_weights = np.array([0.5, 0.3, 0.2])
    n = 30000
    comp = rng.choice(3, size=n, p=true_weights)
    x = true_means[comp] + rng.standard_normal((n, 3)) * np.sqrt(true_vars[comp])
    am = AmDiagGmm.init_single(1, x.mean(axis=0), x.var(axis=0))
    labels = np.zeros(n, int)
    for it in range(60):
        accs = GmmAccumulators.for_model(am)
        am.accumulate(x, labels, accs)
        am.update(accs)
        if it in (5, 15):
            am.mixup([n], am.num_gauss + 1, perturb_factor=0.01, rng=rng)
    order = np.argsort(am.means[:, 0])
    np.testing.assert_allclose(am.means[order], true_means, atol=0.06)
    np.testing.assert_allclose(am.variances[order], true_vars, rtol=0.06)
    np.testing.assert_allclose(np.exp(am.log_weights[order]), true_weights, atol=0.01)
    # and the per-frame likelihood is that of the generating mixture
    true_am = AmDiagGmm(true_means, true_vars, np.log(true_weights), [0, 3])
    assert accs.avg_loglike == pytest.approx(true_am.log_likelihoods(x).mean(), abs=0.01)


def test_accumulators_summed_over_jobs_equal_one_pass(rng):
    am = random_model(rng)
    x = rng.normal(0, 2, (300, am.dim))
    pdfs = rng.integers(0, am.num_pdfs, 300)
    whole = GmmAccumulators.for_model(am)
    am.accumulate(x, pdfs, whole)
    parts = [GmmAccumulators.for_model(am) for _ in range(3)]
    for k, part in enumerate(parts):
        am.accumulate(x[k::3], pdfs[k::3], part)
    summed = GmmAccumulators.for_model(am)
    for part in parts:
        summed.add(GmmAccumulators.from_arrays(part.to_arrays()))
    np.testing.assert_allclose(summed.first, whole.first)
    np.testing.assert_allclose(summed.second, whole.second)
    np.testing.assert_allclose(summed.occupancy, whole.occupancy)
    assert summed.total_loglike == pytest.approx(whole.total_loglike)
    # occupancy of each pdf is its frame count
    np.testing.assert_allclose(whole.pdf_occupancies(am.pdf_offsets), np.bincount(pdfs, minlength=3))


TOPO = """<Topology> <TopologyEntry> <ForPhones> 1 2 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 </State> </TopologyEntry> </Topology>"""


def test_model_file_round_trip_and_errors(rng, tmp_path):
    topo = Topology.from_text(TOPO)
    tm = TransitionModel(topo, monophone_tree([[1], [2]], topo))
    am = random_model(rng, gauss_per_pdf=(1, 2, 1, 3), dim=18)  # 2 dims x 3 (deltas) x 3 (splice)
    tm.log_probs[1:3] = np.log([0.6, 0.4])
    from kaldilite.feat.pipeline import FeaturePipeline

    pipeline = FeaturePipeline(cmvn="speaker", delta_order=2, splice_left=1, splice_right=1)
    path = tmp_path / "exp" / "final.mdl"
    save_model(path, tm, am, pipeline, extra={"raw_feature_dim": 2})
    tm2, am2, pipeline2, extra = load_model(path)
    np.testing.assert_array_equal(tm2.log_probs, tm.log_probs)
    assert tm2.tuples == tm.tuples and extra == {"raw_feature_dim": 2}
    for name in ("means", "variances", "log_weights", "pdf_offsets"):
        np.testing.assert_array_equal(getattr(am2, name), getattr(am, name))
    feats = rng.normal(size=(7, 18))
    np.testing.assert_array_equal(am2.log_likelihoods(feats), am.log_likelihoods(feats))
    assert pipeline2 == pipeline
    with pytest.raises(DimensionMismatchError, match=r"final.mdl expects 18-dim features \(2-dim raw features "
                       r"\+ speaker CMVN \+ deltas order 2 \+ splice -1/\+1\) but got 13"):
        am2.log_likelihoods(np.zeros((3, 13)))
    with pytest.raises(MissingFileError):
        load_model(tmp_path / "nope.mdl")
    (tmp_path / "bad.mdl").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a kaldilite model"):
        load_model(tmp_path / "bad.mdl")
    with pytest.raises(InputError, match="pdfs"):
        save_model(tmp_path / "x.mdl", tm, random_model(rng), pipeline)
