"""Denominator lattices (kaldilite.decode.denlat) against brute force and hand-worked cases.

- forward-backward: link posteriors and the log total equal a brute-force sum over every path
  of a small lattice with epsilon links, a shared node, and two final nodes with final costs;
  also on a lattice the real decoder generated (paths enumerated the same way).
- boosting: lattice-boost-ali's rule worked by hand per link (phone error or not, silence not
  counted, epsilon untouched).
- cancelling: sum-post --merge numerator minus denominator, by hand.
"""

import numpy as np
import pytest
from den_lattice_fixtures import enumerate_paths, tiny_lattice

from kaldilite.decode.denlat import (DenLattice, boost_graph_costs, cancel_posteriors, forward_backward,
                                     forward_backward_smbr, frame_pdf_posteriors, load_den_lattices,
                                     save_den_lattices)


def test_forward_backward_equals_the_sum_over_all_paths():
    lat = tiny_lattice()
    tid_to_pdf = np.array([0, 0, 1, 1, 2, 0])
    rng = np.random.default_rng(0)
    loglikes = rng.normal(-5, 2, (2, 3))
    acwt = 0.3
    post, total = forward_backward(lat, loglikes, tid_to_pdf, acwt)
    acoustic = np.array([-loglikes[f, tid_to_pdf[t]] if t else 0.0 for f, t in zip(lat.frame, lat.tid)])
    paths = enumerate_paths(lat, lat.graph + acwt * acoustic)
    assert len(paths) == 5
    z = np.logaddexp.reduce([-c for _, c in paths])
    assert total == pytest.approx(z, abs=1e-12)
    expected = np.zeros(len(lat.src))
    for links, cost in paths:
        for k in links:
            expected[k] += np.exp(-cost - z)
    np.testing.assert_allclose(post, expected, atol=1e-12)
    # per frame, the emitting links' posteriors sum to one
    frames, pdfs, sums = frame_pdf_posteriors(lat, post, tid_to_pdf, 3)
    np.testing.assert_allclose(np.bincount(frames, weights=sums), [1.0, 1.0], atol=1e-12)


def test_forward_backward_on_a_decoder_lattice_equals_brute_force():
    from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
    from kaldilite.graph.compiled import CompiledFst
    import pywrapfst as fst

    # a two-word grammar over 3 transition-ids with self-loops: many alignments of 4 frames
    f = fst.VectorFst()
    s = [f.add_state() for _ in range(4)]
    f.set_start(s[0])
    one = fst.Weight.one(f.weight_type())
    f.add_arc(s[0], fst.Arc(1, 1, fst.Weight(f.weight_type(), 0.7), s[1]))
    f.add_arc(s[0], fst.Arc(2, 2, fst.Weight(f.weight_type(), 0.2), s[2]))
    f.add_arc(s[1], fst.Arc(1, 0, fst.Weight(f.weight_type(), 0.1), s[1]))
    f.add_arc(s[2], fst.Arc(2, 0, fst.Weight(f.weight_type(), 0.4), s[2]))
    f.add_arc(s[1], fst.Arc(3, 0, one, s[3]))
    f.add_arc(s[2], fst.Arc(3, 0, one, s[3]))
    f.add_arc(s[3], fst.Arc(3, 0, fst.Weight(f.weight_type(), 0.3), s[3]))
    f.set_final(s[3], fst.Weight(f.weight_type(), 0.5))
    graph = CompiledFst.from_fst(f)
    tid_to_pdf = np.array([0, 0, 1, 2])
    rng = np.random.default_rng(1)
    loglikes = rng.normal(-3, 1, (4, 3)).astype(np.float32)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=50, acoustic_scale=0.5, lattice_beam=50),
                          lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    lat = DenLattice.from_raw(decoder.get_raw_lattice(50.0), 4)
    post, total = forward_backward(lat, loglikes.astype(np.float64), tid_to_pdf, 0.5)
    # every path of the grammar: first word's tid for k frames, then tid 3 for the rest
    costs, pdf_paths = [], []
    for first, w, loop in ((1, 0.7, 0.1), (2, 0.2, 0.4)):
        for k in range(1, 4):
            ac = -loglikes[:k, tid_to_pdf[first]].sum() - loglikes[k:, 2].sum()
            costs.append(w + (k - 1) * loop + 0.3 * (4 - k - 1) + 0.5 + 0.5 * ac)
            pdf_paths.append([tid_to_pdf[first]] * k + [2] * (4 - k))
    z = np.logaddexp.reduce(-np.array(costs))
    assert total == pytest.approx(z, abs=1e-5)
    expected = np.zeros((4, 3))
    for cost, pdfs in zip(costs, pdf_paths):
        expected[np.arange(4), pdfs] += np.exp(-cost - z)
    frames, pdfs, sums = frame_pdf_posteriors(lat, post, tid_to_pdf, 3)
    got = np.zeros((4, 3))
    got[frames, pdfs] = sums
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_boosting_lowers_the_graph_cost_of_non_silence_phone_errors():
    lat = tiny_lattice()
    # transition-id -> phone: 1 -> 10, 2 -> 11, 3 -> 12 (silence), 4 -> 11, 5 -> 13
    tid_to_phone = np.array([0, 10, 11, 12, 11, 13])
    alignment = np.array([1, 2])  # reference phones: 10 at frame 0, 11 at frame 1
    boosted = boost_graph_costs(lat, tid_to_phone, alignment, [12], 0.1)
    # link: (tid, frame) -> error?  t1@0 phone 10 = ref: no; t3@0 silence: not counted; eps:
    # untouched; t4@1 phone 11 = ref: no; t2@1 phone 11: no; t5@1 phone 13 != 11: error
    np.testing.assert_allclose(boosted, lat.graph - 0.1 * np.array([0, 0, 0, 0, 0, 1]))
    assert boost_graph_costs(lat, tid_to_phone, alignment, [12], 0.0) is lat.graph


def test_cancelling_subtracts_the_denominator_from_the_numerator_per_frame_and_pdf():
    # 3 frames, numerator pdfs [0, 1, 1]; denominator: frame 0 {0: 0.75, 2: 0.25}, frame 1 {1: 1.0},
    # frame 2 {1: 0.5, 0: 0.5}
    frames, pdfs, w = cancel_posteriors(3, 3, np.array([0, 0, 1, 2, 2]), np.array([0, 2, 1, 0, 1]),
                                        np.array([0.75, 0.25, 1.0, 0.5, 0.5]), np.array([0, 1, 1]))
    got = {(int(f), int(p)): float(v) for f, p, v in zip(frames, pdfs, w)}
    assert got == {(0, 0): 0.25, (0, 2): -0.25, (2, 0): -0.5, (2, 1): 0.5}  # frame 1 cancels out


def test_lattices_survive_a_save_and_load(tmp_path):
    lat = tiny_lattice()
    other = DenLattice(2, np.array([0]), np.array([1]), np.array([4]), np.array([0]), np.array([2.0]),
                       np.array([np.inf, 0.0]), 1)
    save_den_lattices([("u1", lat), ("u2", other)], tmp_path / "denlat.1.npz")
    back = load_den_lattices(tmp_path / "denlat.1.npz")
    assert list(back) == ["u1", "u2"]
    for a, b in ((lat, back["u1"]), (other, back["u2"])):
        assert (a.num_nodes, a.num_frames) == (b.num_nodes, b.num_frames)
        for name in ("src", "dst", "tid", "frame", "graph", "final"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # a job asks for its own utterances only
    assert list(load_den_lattices(tmp_path / "denlat.1.npz", {"u2", "u3"})) == ["u2"]
    np.testing.assert_array_equal(load_den_lattices(tmp_path / "denlat.1.npz", {"u2"})["u2"].final, other.final)
    assert load_den_lattices(tmp_path / "denlat.1.npz", {"u3"}) == {}


def test_a_decoders_lattices_are_stored_at_32_bits_and_others_exactly(tmp_path):
    # a decoder's lattice: graph and final costs are the graph's float32 weights
    weights = np.float32([0.5, 1.25, 0.3, 0.1, 0.2, 0.7]).astype(np.float64)
    lat = tiny_lattice()
    lat.graph, lat.final = weights, np.float32(lat.final).astype(np.float64)
    save_den_lattices([("u1", lat)], tmp_path / "denlat.1.npz")
    with np.load(tmp_path / "denlat.1.npz") as data:
        assert {name: data[name].dtype for name in ("src", "dst", "tid", "frame", "graph", "final")} == {
            "src": np.int32, "dst": np.int32, "tid": np.int32, "frame": np.int32, "graph": np.float32,
            "final": np.float32}
    back = load_den_lattices(tmp_path / "denlat.1.npz")["u1"]
    assert back.graph.dtype == np.float32 and back.src.dtype == np.int32  # and so in memory
    np.testing.assert_array_equal(back.graph, weights)
    np.testing.assert_array_equal(back.final, lat.final)
    # the 32-bit lattice's forward-backward, sMBR pass, per-pdf posteriors and boosting are the 64-bit one's
    loglikes = np.random.default_rng(0).normal(size=(2, 6))
    tid_to_pdf = np.array([0, 0, 1, 2, 3, 4])
    post, total = forward_backward(lat, loglikes, tid_to_pdf, 0.1)
    post32, total32 = forward_backward(back, loglikes, tid_to_pdf, 0.1)
    assert total32 == total
    np.testing.assert_array_equal(post32, post)
    for got, want in zip(frame_pdf_posteriors(back, post32, tid_to_pdf, 5),
                         frame_pdf_posteriors(lat, post, tid_to_pdf, 5)):
        np.testing.assert_array_equal(got, want)
    smbr = forward_backward_smbr(lat, loglikes, tid_to_pdf, np.arange(6), [1, 2], [1], 0.1)
    smbr32 = forward_backward_smbr(back, loglikes, tid_to_pdf, np.arange(6), [1, 2], [1], 0.1)
    np.testing.assert_array_equal(smbr32[0], smbr[0])
    assert smbr32[1:] == smbr[1:]
    np.testing.assert_array_equal(boost_graph_costs(back, np.arange(6), [1, 2], [1], 0.1),
                                  boost_graph_costs(lat, np.arange(6), [1, 2], [1], 0.1))
    # costs float32 cannot hold (0.1 as a float64) and ids past int32 are kept as they are
    lat = tiny_lattice()
    lat.tid = lat.tid + 2**31
    save_den_lattices([("u1", lat)], tmp_path / "denlat.2.npz")
    with np.load(tmp_path / "denlat.2.npz") as data:
        assert data["graph"].dtype == np.float64 and data["tid"].dtype == np.int64
    back = load_den_lattices(tmp_path / "denlat.2.npz")["u1"]
    np.testing.assert_array_equal(back.graph, lat.graph)
    np.testing.assert_array_equal(back.tid, lat.tid)
