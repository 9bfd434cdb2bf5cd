"""WER against a brute-force search over all alignments, hand-computed cases, Kaldi's printed
format, and Kaldi's own wer_per_utt_details.pl for the per_utt file."""

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError
from kaldilite.score.wer import WerStats, align, compute_wer, edit_distance, per_utt_details, read_transcripts

KALDI_MIRROR = Path("/work/.mirror/kaldi-asr+kaldi/repo")


def brute_force(ref, hyp):
    """All (cost, ins, del, sub) reachable by some complete alignment, by exhaustive recursion."""

    @functools.lru_cache(maxsize=None)
    def outcomes(i, j):
        if i == len(ref) and j == len(hyp):
            return {(0, 0, 0, 0)}
        found = set()
        if i < len(ref) and j < len(hyp):
            mismatch = int(ref[i] != hyp[j])
            found |= {(c + mismatch, a, d, s + mismatch) for c, a, d, s in outcomes(i + 1, j + 1)}
        if i < len(ref):
            found |= {(c + 1, a, d + 1, s) for c, a, d, s in outcomes(i + 1, j)}
        if j < len(hyp):
            found |= {(c + 1, a + 1, d, s) for c, a, d, s in outcomes(i, j + 1)}
        return frozenset(found)

    return outcomes(0, 0)


def test_edit_distance_equals_brute_force_minimum_on_random_sentences(rng):
    vocabulary = list("abcd")
    for _ in range(400):
        ref = [vocabulary[k] for k in rng.integers(0, 4, rng.integers(0, 7))]
        hyp = [vocabulary[k] for k in rng.integers(0, 4, rng.integers(0, 7))]
        errors, ins, dels, subs = edit_distance(ref, hyp)
        every = brute_force(tuple(ref), tuple(hyp))
        best = min(c for c, *_ in every)
        assert errors == best
        assert (errors, ins, dels, subs) in every  # the breakdown is one optimal alignment's
        assert ins - dels == len(hyp) - len(ref)
        pairs = align(ref, hyp)
        assert [r for r, _ in pairs if r != "***"] == ref and [h for _, h in pairs if h != "***"] == hyp
        assert sum(r != h for r, h in pairs) == best


def test_hand_computed_cases():
    assert edit_distance("a b c d", "a b c d") == (0, 0, 0, 0)
    assert edit_distance("", "x y") == (2, 2, 0, 0)
    assert edit_distance("x y", "") == (2, 0, 2, 0)
    assert edit_distance("turn on the light", "turn the lights") == (2, 0, 1, 1)
    assert edit_distance("a b c d", "a x c d e") == (2, 1, 0, 1)
    # "a b" -> "b a" costs 2 either as two substitutions or as a deletion plus an insertion.
    # Traced by hand through Kaldi's two routines: compute-wer's recursion takes a substitution
    # only when strictly cheaper and reports 1 ins + 1 del, while align-text's traceback
    # prefers the diagonal on ties and shows two substitutions. Both are reproduced.
    assert edit_distance("a b", "b a") == (2, 1, 1, 0)
    assert align("a b", "b a") == [("a", "b"), ("b", "a")]
    assert align("turn on the light", "turn the lights") == [
        ("turn", "turn"), ("on", "***"), ("the", "the"), ("light", "lights")]


def test_wer_lines_are_kaldis_format():
    stats = WerStats(errors=89, ins=2, dels=3, subs=84, words=1000, sentences=300, sentence_errors=51)
    assert str(stats) == "%WER 8.90 [ 89 / 1000, 2 ins, 3 del, 84 sub ]\n%SER 17.00 [ 51 / 300 ]"
    assert WerStats(errors=1, words=3, sentences=3, sentence_errors=2).wer_line().startswith("%WER 33.33 [ 1 / 3,")
    assert WerStats(errors=1, words=800).wer_line().startswith("%WER 0.12 ")  # exact tie rounds to even, as printf


def test_modes_follow_compute_wer():
    ref = {"u1": "a b c", "u2": "on", "u3": "off now"}
    hyp = {"u1": "a c", "u2": "on", "extra": "ignored"}
    present = compute_wer(ref, hyp, "present")
    assert (present.errors, present.words, present.sentences, present.sentence_errors, present.absent) == (1, 4, 2, 1, 1)
    assert present.wer_line() == "%WER 25.00 [ 1 / 4, 0 ins, 1 del, 0 sub ] [PARTIAL]"
    every = compute_wer(ref, hyp, "all")
    assert (every.errors, every.dels, every.words, every.sentences) == (3, 3, 6, 3)
    assert every.report().endswith("Scored 3 sentences, 1 not present in hyp.")
    with pytest.raises(InputError, match="no hypothesis for utterance u3 and --mode=strict"):
        compute_wer(ref, hyp, "strict")
    assert str(compute_wer({"u": ["a"]}, {"u": ["a"]}, "strict")).startswith("%WER 0.00 [ 0 / 1, 0 ins, 0 del, 0 sub ]\n")


def test_per_utt_matches_kaldis_wer_per_utt_details_script(tmp_path, rng):
    if not KALDI_MIRROR.exists() or shutil.which("perl") is None:
        pytest.skip("Kaldi mirror or perl not available")
    script = subprocess.run(["git", "-C", str(KALDI_MIRROR), "show", "HEAD:egs/wsj/s5/utils/scoring/wer_per_utt_details.pl"],
                            check=True, capture_output=True, text=True).stdout
    (tmp_path / "details.pl").write_text(script)
    words = ["on", "off", "light", "lamp", "a", "the"]
    ref = {f"u{k}": " ".join(rng.choice(words, rng.integers(1, 6))) for k in range(30)}
    hyp = {f"u{k}": " ".join(rng.choice(words, rng.integers(0, 6))) for k in range(30)}
    # align-text's output format, built from our alignment, is the script's input
    aligned = "".join(f"{u} " + " ; ".join(f"{r} {h}" for r, h in align(ref[u], hyp[u])) + "\n" for u in ref if hyp[u] or ref[u])
    kaldi = subprocess.run(["perl", str(tmp_path / "details.pl"), "--special-symbol", "***"], input=aligned,
                           capture_output=True, text=True, check=True).stdout
    ours = [line for line in per_utt_details(ref, hyp)]
    assert ours == kaldi.splitlines()


def test_read_transcripts_with_kaldi_prefixes(tmp_path):
    (tmp_path / "text").write_text("u1 turn on\nu2\n")
    assert read_transcripts(f"ark,t:{tmp_path / 'text'}") == {"u1": ["turn", "on"], "u2": []}
    (tmp_path / "dup").write_text("u1 a\nu1 b\n")
    with pytest.raises(InputError, match=r"dup:2: utterance u1 appears twice \(first at line 1\)"):
        read_transcripts(tmp_path / "dup")


def test_compute_wer_cli_prints_kaldis_three_lines_and_writes_per_utt(tmp_path):
    (tmp_path / "ref").write_text("u1 turn on the light\nu2 stop\nu3 go\n")
    (tmp_path / "hyp").write_text("u1 turn the lights\nu2 stop\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["compute-wer", "--mode", "present", f"ark:{tmp_path / 'ref'}",
                                 f"ark,t:{tmp_path / 'hyp'}", "--per-utt", str(tmp_path / "per_utt")])
    assert result.exit_code == 0, result.output
    assert result.output == ("%WER 40.00 [ 2 / 5, 0 ins, 1 del, 1 sub ] [PARTIAL]\n%SER 50.00 [ 1 / 2 ]\n"
                             "Scored 2 sentences, 1 not present in hyp.\n")
    assert (tmp_path / "per_utt").read_text().splitlines()[3] == "u1 #csid 2 1 0 1"
    piped = runner.invoke(cli, ["compute-wer", str(tmp_path / "ref"), "ark:-"], input="u1 turn on the light\n")
    assert piped.output.splitlines()[0] == "%WER 0.00 [ 0 / 4, 0 ins, 0 del, 0 sub ] [PARTIAL]"
    strict = runner.invoke(cli, ["compute-wer", "--mode", "strict", str(tmp_path / "ref"), str(tmp_path / "hyp")])
    assert strict.exit_code != 0 and "no hypothesis for utterance u3" in str(strict.exception)
