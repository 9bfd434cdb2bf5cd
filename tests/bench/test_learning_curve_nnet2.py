"""bench/learning_curve_nnet2.py's helpers: which speaker an augmented copy belongs to, nested speaker
subsets that carry every copy, and the log-linear fit the curve is read with."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import learning_curve_nnet2 as lc  # noqa: E402

# the copy prefixes of the commands recipe's hires_train_aug_rev (speeds, noise, reverberated speed-1.0 copy)
COPIES = ("sp0.9-", "sp1.0-", "sp1.1-", "noise-", "rev1-sp1.0-")


@pytest.mark.parametrize("spk, source", [("022cd682", "022cd682"), ("sp0.9-022cd682", "022cd682"),
                                         ("noise-03401e93", "03401e93"), ("rev1-sp1.0-022cd682", "022cd682"),
                                         ("sp1.1-noise-0a7c2a8d", "0a7c2a8d"), ("rvb2-abc", "abc")])
def test_source_speaker_strips_every_copy_prefix(spk, source):
    assert lc.source_speaker(spk) == source


def test_a_speaker_id_that_only_looks_like_a_prefix_is_kept():
    assert lc.source_speaker("noisy") == "noisy"
    assert lc.source_speaker("sp1x-abc") == "sp1x-abc"


def _train_dir(tmp_path, speakers, utts_per_speaker=3):
    lines = []
    for spk in speakers:
        for k in range(utts_per_speaker):
            for copy in COPIES:
                lines.append(f"{copy}{spk}-yes-{k:02d} {copy}{spk}")
    (tmp_path / "utt2spk").write_text("".join(f"{line}\n" for line in sorted(lines)))
    return tmp_path


def test_subsets_are_nested_and_carry_every_copy(tmp_path):
    speakers = [f"{k:08x}" for k in range(40)]
    train = _train_dir(tmp_path, speakers)
    order = lc.speaker_order(train, seed=4)
    assert sorted(order) == speakers  # each source speaker once, copies folded in
    assert order == lc.speaker_order(train, seed=4) and order != lc.speaker_order(train, seed=5)
    quarter, half = (lc.subset_utterances(train, order[:n]) for n in (10, 20))
    assert set(quarter) < set(half)
    assert len(quarter) == 10 * 3 * len(COPIES)
    # every copy of a chosen speaker's utterances is in, nothing else
    assert set(quarter) == {f"{copy}{spk}-yes-{k:02d}" for spk in order[:10] for k in range(3) for copy in COPIES}


def test_log_linear_fit_recovers_the_generating_line():
    points = [(30, 70.0 + 4.5 * math.log2(30)), (60, 70.0 + 4.5 * math.log2(60)), (120, 70.0 + 4.5 * math.log2(120))]
    intercept, slope = lc.log_linear_fit(points)
    assert slope == pytest.approx(4.5) and intercept == pytest.approx(70.0)
    # y = 70 + 4.5 log2(n) = 95  <=>  n = 2 ** (25 / 4.5)
    assert lc.speakers_for(95.0, (intercept, slope)) == pytest.approx(2 ** (25 / 4.5))


def test_least_squares_through_noisy_points_and_a_flat_curve():
    # hand-computed: x = log2 n = 1, 2, 3; y = 1, 3, 2 -> slope = sum(dx dy) / sum(dx^2) = (-1*-1 + 1*0) / 2 = 0.5
    intercept, slope = lc.log_linear_fit([(2, 1.0), (4, 3.0), (8, 2.0)])
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(1.0)
    assert lc.speakers_for(95.0, (80.0, 0.0)) is None and lc.speakers_for(95.0, (80.0, -1.0)) is None


def _row(speakers, seed, acc):
    """A curve row whose every accuracy-like figure is `acc` (a fraction)."""
    figures = dict(acc=acc, fa=0.05, halves=(acc, 0.05), oracle=acc, oracle_fa=0.046, eer=0.1, forced=acc)
    return dict(fraction=speakers / 120, speakers=speakers, seed=seed, name=f"n{speakers}_{seed}", train_cpu=None,
                recipe=figures, llr=figures, frame_acc=acc, frame_objf=-2.0, log=(None, None, None))


def test_curve_tables_fit_the_seed_means_and_extrapolate_to_the_goal():
    # seed 0 on 60 + 5 log2(n), seed 1 on 64 + 5 log2(n): the means on 62 + 5 log2(n), 5 points per doubling;
    # 95% at log2(n) = 33 / 5 -> n = 2 ** 6.6 = 97.0 speakers (per seed: 2 ** 7 = 128, 2 ** 6.2 = 73.5)
    rows = [_row(n, seed, (base + 5 * math.log2(n)) / 100) for seed, base in ((0, 60), (1, 64)) for n in (30, 60, 120)]
    text = lc.curve_tables(rows, [], 95.0)
    acc_line = next(line for line in text.splitlines() if line.startswith("| acc @ 5% FA %"))
    assert acc_line.endswith("| +5.0 (+5.0, +5.0) |")
    assert f"| {62 + 5 * math.log2(30):.1f} ({60 + 5 * math.log2(30):.1f}, {64 + 5 * math.log2(30):.1f}) |" in acc_line
    assert "acc @ 5% FA to 95%: ~97 training speakers (per seed: ~128, ~74)." in text
    assert text.count("| 30 (25%) |") == 2 and text.count("| 120 (100%) |") == 2


def test_curve_tables_say_never_when_a_curve_does_not_rise_and_keep_extra_rows_out_of_the_fit():
    rows = [_row(n, 0, acc) for n, acc in ((30, 0.8), (60, 0.7), (120, 0.6))]
    extra = [_row(120, "avg", 0.99)]
    text = lc.curve_tables(rows, extra, 95.0)
    assert "acc @ 5% FA to 95%: never (no rise) (per seed: never (no rise))." in text
    assert "| 120 (100%) | avg | 99.0 (5.0) |" in text
    acc_line = next(line for line in text.splitlines() if line.startswith("| acc @ 5% FA %"))
    assert "| 60.0 (60.0) |" in acc_line  # the extra row's 99% is not in the 120-speaker mean


def test_per_command_tables_count_paired_fixes_and_breaks_within_a_seed(monkeypatch):
    monkeypatch.setattr(lc, "commands", lambda: ["go", "no"])
    # 4 utterances: u1, u2 of "go", u3, u4 of "no"; seed 0 at 30 -> 60 speakers fixes u1 and u3, breaks u4

    def row(speakers, seed, go, no):
        return dict(speakers=speakers, seed=seed, correct={"u1": ("go", go[0]), "u2": ("go", go[1]),
                                                           "u3": ("no", no[0]), "u4": ("no", no[1])})
    rows = [row(30, 0, (False, True), (False, True)), row(60, 0, (True, True), (True, False)),
            row(30, 1, (False, False), (True, True)), row(60, 1, (False, False), (True, True))]
    text = lc.per_command_tables(rows)
    # go at 30 speakers: 1 of 4 right over both seeds -> 25%; at 60: 2 of 4 -> 50%
    assert "| go (2) | 25 | 50 |" in text
    assert "| no (2) | 75 | 75 |" in text
    assert "seed 0 30 -> 60: +2 / -1; seed 1 30 -> 60: +0 / -0." in text
