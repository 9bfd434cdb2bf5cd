"""MMI training of an nnet2 network (kaldilite.nnet.discriminative, kaldilite.train.nnet_discriminative).

Independent answers:
- denominator statistics of `mmi_derivative` vs brute-force enumeration of every path of a small
  lattice with an epsilon link, a shared node and two final nodes (posteriors per frame and pdf,
  log total), and vs the closed form of a "sausage" lattice (every pdf at every frame, no graph
  cost): denominator posteriors = softmax(acwt x log-likelihoods) per frame;
- the gradient the network receives vs central finite differences of the MMI objective / acwt,
  with the prior term (prior scale 0.5) in the log-likelihoods, with and without a sum-group
  (mix-up) output, along random directions of every affine component;
- --xent-regularize x adds x times the gradient train-nnet2's cross-entropy leaves (with and without
  a sum-group output);
- a short training on a toy problem (frames of known Gaussian classes, sausage lattices) raises
  the MMI objective and the frame accuracy;
- validation (objective only, no derivative) vs a training pass with an update that changes nothing
  (MMI with boost, sMBR; one lattice without a complete path): the same objective and accuracy.
"""

import types

import numpy as np
import pytest
from den_lattice_fixtures import enumerate_paths, tiny_lattice

from kaldilite.decode.denlat import DenLattice
from kaldilite.errors import InputError
from kaldilite.nnet.components import (AffineComponent, NormalizeComponent, PnormComponent, SoftmaxComponent,
                                       SumGroupComponent)
from kaldilite.nnet.discriminative import forward_log_posteriors
from kaldilite.nnet.network import Nnet
from kaldilite.train.nnet_discriminative import (NnetDiscriminativeOptions, _minibatch_pass, _minibatches,
                                                 mmi_derivative, smbr_derivative)


def sausage(num_frames, num_pdfs):
    """Node t -> t+1 by one link per pdf (tid = pdf + 1), graph cost 0, last node final."""
    src = np.repeat(np.arange(num_frames), num_pdfs)
    tid = np.tile(np.arange(1, num_pdfs + 1), num_frames)
    return DenLattice(num_frames + 1, src, src + 1, tid, src.copy(), np.zeros(len(src)),
                      np.r_[np.full(num_frames, np.inf), 0.0], num_frames)


def test_denominator_posteriors_equal_brute_force_enumeration():
    lat = tiny_lattice()
    tid_to_pdf = np.array([0, 0, 1, 1, 2, 0])
    loglikes = np.random.default_rng(1).normal(-4, 2, (2, 3))
    acwt, num_ali = 0.5, np.array([2, 1])
    num, den, deriv, dropped = mmi_derivative(lat, loglikes, tid_to_pdf, 3, num_ali, acwt)
    acoustic = np.array([-loglikes[f, tid_to_pdf[t]] if t else 0.0 for f, t in zip(lat.frame, lat.tid)])
    paths = enumerate_paths(lat, lat.graph + acwt * acoustic)
    assert len(paths) == 5
    log_total = np.logaddexp.reduce([-c for _, c in paths])
    expected = np.zeros((2, 3))
    for links, cost in paths:
        for k in links:
            if lat.tid[k]:
                expected[lat.frame[k], tid_to_pdf[lat.tid[k]]] += np.exp(-cost - log_total)
    expected[[0, 1], num_ali] -= 1.0  # derivative = numerator - denominator
    assert den == pytest.approx(log_total, abs=1e-12)
    assert num == pytest.approx(acwt * (loglikes[0, 2] + loglikes[1, 1]), abs=1e-12)
    np.testing.assert_allclose(deriv, -expected, atol=1e-12)
    assert dropped == 0


def test_sausage_lattice_gives_per_frame_softmax_and_drop_frames_drops_lost_references():
    lat = sausage(4, 5)
    loglikes = np.random.default_rng(2).normal(-3, 3, (4, 5))
    num_ali = np.array([0, 4, 2, 2])
    acwt = 0.1
    _, den, deriv, _ = mmi_derivative(lat, loglikes, np.r_[0, np.arange(5)], 5, num_ali, acwt)
    scaled = acwt * loglikes
    softmax = np.exp(scaled - np.logaddexp.reduce(scaled, axis=1, keepdims=True))
    assert den == pytest.approx(np.logaddexp.reduce(scaled, axis=1).sum(), abs=1e-10)
    np.testing.assert_allclose(deriv, np.eye(5)[num_ali] - softmax, atol=1e-12)
    # a lattice without pdf 4 at all: frame 1's reference is lost there and drops out
    keep = lat.tid != 5
    cut = DenLattice(lat.num_nodes, lat.src[keep], lat.dst[keep], lat.tid[keep], lat.frame[keep], lat.graph[keep],
                     lat.final, 4)
    _, _, deriv, dropped = mmi_derivative(cut, loglikes, np.r_[0, np.arange(5)], 5, num_ali, acwt,
                                          drop_frames=True)
    assert dropped == 1 and not deriv[1].any() and deriv[0].any()


def test_smbr_expected_accuracy_and_derivative_equal_brute_force_enumeration():
    lat = tiny_lattice()
    tid_to_pdf = np.array([0, 0, 1, 1, 2, 0])
    tid_to_phone = np.array([0, 1, 2, 2, 3, 1])  # phone 1 is silence (tids 1 and 5)
    tm = types.SimpleNamespace(tid_to_pdf=tid_to_pdf, tid_to_phone=tid_to_phone)
    loglikes = np.random.default_rng(5).normal(-4, 2, (2, 3))
    acwt, ref = 0.5, np.array([3, 5])  # reference: pdf 1 (phone 2), then silence pdf 0 (phone 1)
    for one_silence_class in (True, False):
        expected_acc, _, deriv = smbr_derivative(lat, loglikes, tm, 3, ref, acwt, [1], one_silence_class)
        acoustic = np.array([-loglikes[f, tid_to_pdf[t]] if t else 0.0 for f, t in zip(lat.frame, lat.tid)])
        paths = enumerate_paths(lat, lat.graph + acwt * acoustic)
        log_total = np.logaddexp.reduce([-c for _, c in paths])

        def right(k):
            t, r = lat.tid[k], ref[lat.frame[k]]
            sil, ref_sil = tid_to_phone[t] == 1, tid_to_phone[r] == 1
            same = tid_to_pdf[t] == tid_to_pdf[r]
            return (same or (sil and ref_sil)) if one_silence_class else (same and not sil)

        accs = [sum(right(k) for k in links if lat.tid[k]) for links, _ in paths]
        probs = [np.exp(-c - log_total) for _, c in paths]
        mean = sum(p * a for p, a in zip(probs, accs))
        brute = np.zeros((2, 3))  # d E[acc] / d (acwt x loglike) = sum over paths of P (acc - E[acc]) x uses
        for (links, _), p, a in zip(paths, probs, accs):
            for k in links:
                if lat.tid[k]:
                    brute[lat.frame[k], tid_to_pdf[lat.tid[k]]] += p * (a - mean)
        assert expected_acc == pytest.approx(mean, abs=1e-12)
        np.testing.assert_allclose(deriv, brute, atol=1e-12)
        assert np.abs(deriv).max() > 1e-3


def tiny_net(rng, mixed):
    components = [AffineComponent.random(6, 8, rng), PnormComponent(8, 4), NormalizeComponent(4)]
    if mixed:  # 6 softmax sub-classes -> 3 pdfs, as after mix-up
        components += [AffineComponent.random(4, 6, rng, param_stddev=1.0), SoftmaxComponent(6),
                       SumGroupComponent([2, 1, 3])]
    else:
        components += [AffineComponent.random(4, 3, rng, param_stddev=1.0), SoftmaxComponent(3)]
    return Nnet(components)


@pytest.mark.parametrize("mixed", [False, True])
def test_network_gradient_matches_finite_differences_of_the_mmi_objective(mixed):
    rng = np.random.default_rng(3)
    nnet = tiny_net(rng, mixed)
    feats = rng.normal(size=(2, 6)).astype(np.float32)
    lat = tiny_lattice()
    tid_to_pdf = np.array([0, 0, 1, 1, 2, 0])
    num_ali = np.array([2, 1])
    log_prior = 0.5 * np.log(np.array([0.5, 0.3, 0.2]))  # prior scale 0.5
    acwt = 0.1

    def objective(net):  # MMI objective / acwt (the function whose derivative Kaldi back-propagates)
        loglikes = forward_log_posteriors(net, feats).log_post - log_prior
        num, den, _, _ = mmi_derivative(lat, loglikes, tid_to_pdf, 3, num_ali, acwt)
        return (num - den) / acwt

    fwd = forward_log_posteriors(nnet, feats)
    _, _, deriv, _ = mmi_derivative(lat, fwd.log_post - log_prior, tid_to_pdf, 3, num_ali, acwt)
    fwd.backward(deriv)
    for index, component in enumerate(nnet.components):
        if component.kind != "affine":
            continue
        direction_w = rng.normal(size=component.weight.shape)
        direction_b = rng.normal(size=component.bias.shape)
        # backward leaves the gradient of -F: the analytic directional derivative of F is minus its projection
        analytic = -(np.vdot(component.grad_weight, direction_w) + np.vdot(component.grad_bias, direction_b))
        eps = 3e-3
        values = []
        for sign in (1, -1):
            net = nnet.copy()
            net.components[index].weight += np.float32(sign * eps) * direction_w.astype(np.float32)
            net.components[index].bias += np.float32(sign * eps) * direction_b.astype(np.float32)
            values.append(objective(net))
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(numeric) > 1e-3
        assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-4)


def test_short_training_raises_the_mmi_objective_on_a_toy_problem():
    rng = np.random.default_rng(4)
    num_pdfs, dim, num_utts, frames = 4, 6, 40, 12
    means = rng.normal(scale=1.0, size=(num_pdfs, dim))
    labels = [rng.integers(0, num_pdfs, frames) for _ in range(num_utts)]
    feats = np.concatenate([means[lab] + rng.normal(scale=1.2, size=(frames, dim)) for lab in labels])
    offsets = np.arange(num_utts + 1) * frames
    data = types.SimpleNamespace(
        examples=feats.astype(np.float32), alis=[lab + 1 for lab in labels],
        lats=[sausage(frames, num_pdfs)] * num_utts,
        rows=lambda idx: np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]))
    tid_to_phone = np.r_[0, np.arange(1, num_pdfs + 1)]  # one phone per pdf, none silence
    model = types.SimpleNamespace(tm=types.SimpleNamespace(tid_to_pdf=np.r_[0, np.arange(num_pdfs)],
                                                          tid_to_phone=tid_to_phone, num_pdfs=num_pdfs))
    nnet = Nnet.pnorm(dim, num_pdfs, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    opts = NnetDiscriminativeOptions(learning_rate=0.01, update="rms", momentum=0.9)
    log_priors = np.log(np.full(num_pdfs, 1.0 / num_pdfs))
    silence = np.zeros(0, np.int64)

    def evaluate():
        num, den, n, _, correct = _minibatch_pass(nnet, model, data, list(range(num_utts)), opts, silence, log_priors)
        return (num - den) / n, correct / n

    from kaldilite.nnet.updates import rms_update

    state = {}
    before, acc_before = evaluate()
    for _ in range(15):
        for batch in _minibatches(rng.permutation(num_utts), np.full(num_utts, frames), 48):
            _minibatch_pass(nnet, model, data, batch, opts, silence, log_priors,
                            lambda net: rms_update(net, state, opts.learning_rate, 1, opts.momentum, opts.rms_decay,
                                                    opts.max_change))
    after, acc_after = evaluate()
    # the zero-initialised output layer starts at uniform posteriors: numerator 0, denominator log 4 per frame
    assert before == pytest.approx(-np.log(num_pdfs), abs=1e-6)
    assert after > before + 0.02
    assert acc_after > 0.7 > acc_before


def test_spec_augment_masks_the_training_minibatch_as_train_nnet2_does():
    from kaldilite.nnet.spec_augment import SpecAugment
    from kaldilite.nnet.train import SplicedFrames

    rng = np.random.default_rng(6)
    num_pdfs, frames = 3, 10
    feats = rng.normal(size=(2 * frames, 13)).astype(np.float32)
    offsets = np.array([0, frames, 2 * frames])
    examples = SplicedFrames(feats, offsets, 1)
    labels = [rng.integers(0, num_pdfs, frames) for _ in range(2)]
    data = types.SimpleNamespace(examples=examples, alis=[lab + 1 for lab in labels],
                                 lats=[sausage(frames, num_pdfs)] * 2,
                                 rows=lambda idx: np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]))
    model = types.SimpleNamespace(tm=types.SimpleNamespace(tid_to_pdf=np.r_[0, np.arange(num_pdfs)],
                                                          tid_to_phone=np.arange(num_pdfs + 1), num_pdfs=num_pdfs))
    nnet = tiny_net(rng, False)
    nnet.components[0] = AffineComponent.random(39, 8, rng)
    spec_augment = SpecAugment(3, 13, freq_max_proportion=0.5)
    opts = NnetDiscriminativeOptions()
    priors = np.zeros(num_pdfs)
    silence = np.zeros(0, np.int64)
    augmented = _minibatch_pass(nnet, model, data, [0, 1], opts, silence, priors, None,
                                (spec_augment, np.random.default_rng(7)))
    masked = spec_augment.apply(examples.spliced(np.arange(2 * frames)), np.random.default_rng(7))
    assert not np.allclose(masked, examples[np.arange(2 * frames)])
    expected = _minibatch_pass(nnet, model, types.SimpleNamespace(**{**vars(data), "examples": masked}), [0, 1], opts,
                               silence, priors)
    plain = _minibatch_pass(nnet, model, data, [0, 1], opts, silence, priors)
    assert augmented[:2] == pytest.approx(expected[:2], abs=1e-9)
    assert abs(augmented[0] - plain[0]) > 1e-6


@pytest.mark.parametrize("mixed", [False, True])
def test_xent_regularize_adds_its_weight_times_the_cross_entropy_gradient(mixed):
    # --xent-regularize x: the gradient left in the network is MMI's plus x times the gradient of the
    # alignment's cross-entropy, the one train-nnet2 computes (Nnet.train_step_gradients)
    rng = np.random.default_rng(8)
    num_pdfs, frames = 3, 7
    nnet = tiny_net(rng, mixed)
    feats = rng.normal(size=(frames, 6)).astype(np.float32)
    labels = rng.integers(0, num_pdfs, frames)
    data = types.SimpleNamespace(examples=feats, alis=[labels + 1], lats=[sausage(frames, num_pdfs)],
                                 rows=lambda idx: np.arange(frames))
    model = types.SimpleNamespace(tm=types.SimpleNamespace(tid_to_pdf=np.r_[0, np.arange(num_pdfs)],
                                                          tid_to_phone=np.arange(num_pdfs + 1), num_pdfs=num_pdfs))
    priors = 0.5 * np.log(np.array([0.5, 0.3, 0.2]))
    grads = {}
    for weight in (0.0, 0.7):
        _minibatch_pass(nnet, model, data, [0], NnetDiscriminativeOptions(xent_regularize=weight),
                        np.zeros(0, np.int64), priors, update=lambda net: None)
        grads[weight] = [(c.grad_weight.copy(), c.grad_bias.copy()) for c in nnet.affine_components()]
    nnet.train_step_gradients(feats, labels)
    for (w0, b0), (w1, b1), c in zip(grads[0.0], grads[0.7], nnet.affine_components()):
        assert np.abs(c.grad_weight).max() > 1e-3
        np.testing.assert_allclose(w1 - w0, 0.7 * c.grad_weight, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b1 - b0, 0.7 * c.grad_bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("criterion", ["mmi", "smbr"])
def test_validation_objective_equals_the_training_passes_with_no_update(criterion):
    # validation (_evaluate: no derivative anywhere) and a training pass whose update changes nothing
    # (the full derivative and backward) must report the same objective, frames and accuracy; a
    # lattice without a complete path counts in neither
    from kaldilite.train.nnet_discriminative import _evaluate

    rng = np.random.default_rng(9)
    num_pdfs, frames, num_utts = 3, 6, 5
    nnet = tiny_net(rng, True)
    feats = rng.normal(size=(num_utts * frames, 6)).astype(np.float32)
    offsets = np.arange(num_utts + 1) * frames
    lats = []
    for i in range(num_utts):
        lat = sausage(frames, num_pdfs)
        lat.graph = rng.uniform(0.0, 2.0, len(lat.graph))
        if i == 2:
            lat.final = np.full(frames + 1, np.inf)  # no final node: no complete path
        lats.append(lat)
    data = types.SimpleNamespace(examples=feats, alis=[rng.integers(1, num_pdfs + 1, frames) for _ in range(num_utts)],
                                 lats=lats, offsets=offsets,
                                 rows=lambda idx: np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]))
    model = types.SimpleNamespace(tm=types.SimpleNamespace(tid_to_pdf=np.r_[0, np.arange(num_pdfs)],
                                                          tid_to_phone=np.arange(num_pdfs + 1), num_pdfs=num_pdfs))
    opts = NnetDiscriminativeOptions(criterion=criterion, boost=0.1 if criterion == "mmi" else 0.0)
    priors = 0.5 * np.log(np.array([0.5, 0.3, 0.2]))
    silence = np.zeros(0, np.int64)
    weights = [c.weight.copy() for c in nnet.affine_components()]
    num, den, n, _, correct = _minibatch_pass(nnet, model, data, list(range(num_utts)), opts, silence, priors,
                                              update=lambda net: None)
    assert n == (num_utts - 1) * frames
    assert any(np.abs(c.grad_weight).max() > 1e-6 for c in nnet.affine_components())  # a derivative was computed
    value, accuracy = _evaluate(nnet, model, data, np.arange(num_utts), opts, silence, priors)
    assert value == pytest.approx((num - den) / n, rel=1e-12)
    assert accuracy == correct / n
    for w, c in zip(weights, nnet.affine_components()):
        np.testing.assert_array_equal(w, c.weight)
    # the per-utterance statistics without their derivative are the same numbers
    log_likes = forward_log_posteriors(nnet, feats[:frames]).log_post - priors
    pdf_ali = data.alis[0] - 1
    if criterion == "mmi":
        full = mmi_derivative(lats[0], log_likes, model.tm.tid_to_pdf, num_pdfs, pdf_ali, opts.acwt)
        bare = mmi_derivative(lats[0], log_likes, model.tm.tid_to_pdf, num_pdfs, pdf_ali, opts.acwt, derivative=False)
    else:
        full = smbr_derivative(lats[0], log_likes, model.tm, num_pdfs, data.alis[0], opts.acwt, silence)
        bare = smbr_derivative(lats[0], log_likes, model.tm, num_pdfs, data.alis[0], opts.acwt, silence,
                               derivative=False)
    assert full[2] is not None and bare[2] is None
    assert bare[:2] == pytest.approx(full[:2], rel=1e-12)


def test_a_validation_forward_pass_gives_the_same_posteriors_and_refuses_backward():
    rng = np.random.default_rng(10)
    nnet = tiny_net(rng, False)
    feats = rng.normal(size=(5, 6)).astype(np.float32)
    kept, bare = forward_log_posteriors(nnet, feats), forward_log_posteriors(nnet, feats, keep=False)
    np.testing.assert_array_equal(bare.log_post, kept.log_post)
    with pytest.raises(RuntimeError, match="keep=False"):
        bare.backward(np.zeros_like(bare.log_post))


@pytest.mark.parametrize("proportion", [-0.1, 1.0])
def test_a_spec_augment_proportion_outside_0_1_is_refused_before_any_work(proportion):
    # SpecAugment itself refuses >= 1 only once the lattices are loaded, and a negative one meant "off"
    with pytest.raises(InputError, match=r"^--spec-augment-freq-max-proportion must be in \[0, 1\), got "):
        NnetDiscriminativeOptions(spec_augment_freq_max_proportion=proportion)


def test_a_malformed_copy_ali_prefixes_is_refused_before_any_work():
    # train-nnet2's parser and message; None (the default) means: as the source model was trained
    with pytest.raises(InputError, match=r"--copy-ali-prefixes '=sp1.0-': '=sp1.0-' must be COPY=SOURCE"):
        NnetDiscriminativeOptions(copy_ali_prefixes="=sp1.0-")
    assert NnetDiscriminativeOptions().copy_ali_prefixes is None
