"""The relative variance floor of the GMM update (`--var-floor`), against direct computations.

Known answers: with one Gaussian per pdf, the pooled within-Gaussian variance is the variance
of the frames around their own pdf's mean, pooled over pdfs (numpy on the frames); the floor
raises exactly the variances below `var_floor` x that vector and leaves the rest at their ML
values; the SAT alignment model is floored the same way.
"""

import numpy as np

from kaldilite.gmm import AmDiagGmm, GmmAccumulators
from kaldilite.hmm import TransitionModel
from kaldilite.train.gmm_steps import pooled_within_gaussian_variance


def two_pdf_data(rng):
    """pdf 0: tight in dim 0, broad in dim 1; pdf 1: broad in dim 0, tight in dim 1."""
    a = rng.normal([0.0, 0.0], [0.1, 2.0], size=(400, 2))
    b = rng.normal([5.0, 5.0], [2.0, 0.1], size=(600, 2))
    feats = np.concatenate([a, b])
    pdfs = np.concatenate([np.zeros(400, int), np.ones(600, int)])
    return feats, pdfs


def accumulate(am, feats, pdfs):
    accs = GmmAccumulators.for_model(am)
    am.accumulate(feats, pdfs, accs)
    return accs


def single_gaussian_model(feats):
    """Two pdfs of one Gaussian each, started at the global mean and variance."""
    dim = feats.shape[1]
    return AmDiagGmm(np.zeros((2, dim)) + feats.mean(0), np.ones((2, dim)) * feats.var(0), np.zeros(2),
                     np.array([0, 1, 2]))


def test_pooled_within_gaussian_variance_is_the_variance_around_each_frames_own_mean():
    feats, pdfs = two_pdf_data(np.random.default_rng(0))
    accs = accumulate(single_gaussian_model(feats), feats, pdfs)
    residuals = np.concatenate([feats[pdfs == p] - feats[pdfs == p].mean(0) for p in (0, 1)])
    np.testing.assert_allclose(pooled_within_gaussian_variance(accs), (residuals ** 2).mean(0), rtol=1e-10)


def test_the_floor_raises_only_the_variances_below_it():
    feats, pdfs = two_pdf_data(np.random.default_rng(1))
    am = single_gaussian_model(feats)
    accs = accumulate(am, feats, pdfs)
    ml_vars = np.stack([feats[pdfs == p].var(0) for p in (0, 1)])
    floor = 0.5 * pooled_within_gaussian_variance(accs)       # about [1.2, 0.8]
    am.update(accs, variance_floor=floor)
    expected = np.maximum(ml_vars, floor)
    np.testing.assert_allclose(am.variances, expected, rtol=1e-8)
    # the tight dimension of each pdf was floored, the broad one kept its ML variance
    assert am.variances[0, 0] == floor[0] and am.variances[1, 1] == floor[1]
    np.testing.assert_allclose([am.variances[0, 1], am.variances[1, 0]], [ml_vars[0, 1], ml_vars[1, 0]], rtol=1e-8)


def test_without_a_floor_vector_the_update_keeps_kaldis_absolute_floor():
    feats, pdfs = two_pdf_data(np.random.default_rng(2))
    am = single_gaussian_model(feats)
    am.update(accumulate(am, feats, pdfs))
    np.testing.assert_allclose(am.variances, np.stack([feats[pdfs == p].var(0) for p in (0, 1)]), rtol=1e-8)


def test_sum_and_estimate_floors_at_var_floor_times_the_pooled_variance(tmp_path):
    from kaldilite.gmm import load_model, save_model
    from kaldilite.train.gmm_steps import sum_and_estimate

    feats, pdfs = two_pdf_data(np.random.default_rng(3))
    am = single_gaussian_model(feats)
    accs = accumulate(am, feats, pdfs)
    tm = _two_pdf_transition_model()
    save_model(tmp_path / "0.mdl", tm, am)
    arrays = accs.to_arrays()
    np.savez(tmp_path / "0.1.acc.npz", **arrays, transitions=np.zeros(tm.num_transition_ids + 1))
    sum_and_estimate(tmp_path / "0.mdl", [tmp_path / "0.1.acc.npz"], tmp_path / "1.mdl", var_floor=0.5)
    _, floored, _, _ = load_model(tmp_path / "1.mdl")
    floor = 0.5 * pooled_within_gaussian_variance(accs)
    np.testing.assert_allclose(floored.variances, np.maximum(np.stack([feats[pdfs == p].var(0) for p in (0, 1)]),
                                                             floor), rtol=1e-8)


def _two_pdf_transition_model():
    """Two 1-state phones; phone p's state uses pdf p-1 (tuples: phone, state, forward pdf, loop pdf)."""
    from kaldilite.hmm import Topology

    topo = Topology.from_text("""<Topology>
<TopologyEntry>
<ForPhones> 1 2 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>""")
    return TransitionModel(topo, tuples=[(1, 0, 0, 0), (2, 0, 1, 1)])


def _train_mixture(feats, pdfs, var_floor, iters=8, target=90):
    """EM with mixing up on hard pdf labels (what the GMM trainers do between realignments)."""
    from kaldilite.train.gmm_steps import pooled_within_gaussian_variance

    am = single_gaussian_model(feats)
    for it in range(iters):
        accs = accumulate(am, feats, pdfs)
        floor = var_floor * pooled_within_gaussian_variance(accs) if var_floor else None
        am.update(accs, variance_floor=floor)
        if it < iters - 2:
            am.mixup(accs.pdf_occupancies(am.pdf_offsets), target, rng=np.random.default_rng(it))
    return am


def test_a_floored_model_fits_an_unseen_speaker_better_when_few_speakers_trained_it():
    """Known generating model: two classes, each speaker shifts every dimension by its own
    offset. Trained on three speakers with ~20 frames per Gaussian (the min-count cap the
    digits systems reach), the unfloored Gaussians are sharper than a new speaker's frames
    allow (the cause of tri2b's deletions on FSDD's unseen speakers): the floored model gives
    the new speaker's frames a clearly higher likelihood under their own class (0.9 nats/frame)."""
    rng = np.random.default_rng(7)
    dim = 10
    class_means = rng.normal(0.0, 1.5, size=(2, dim))

    def speaker(n):
        offset = rng.normal(0.0, 0.8, size=dim)
        pdfs = rng.integers(0, 2, size=n)
        return class_means[pdfs] + offset + rng.standard_normal((n, dim)), pdfs

    train = [speaker(600) for _ in range(3)]
    feats = np.concatenate([f for f, _ in train])
    pdfs = np.concatenate([p for _, p in train])
    test_feats, test_pdfs = speaker(2000)
    held_out = {}
    for var_floor in (0.0, 1.5):
        am = _train_mixture(feats, pdfs, var_floor)
        assert am.num_gauss > 40  # mixed up to the min-count cap, as the real systems are
        ll = am.log_likelihoods(test_feats, dtype=np.float64)
        held_out[var_floor] = ll[np.arange(len(test_pdfs)), test_pdfs].mean()
    assert held_out[1.5] > held_out[0.0] + 0.5, held_out
