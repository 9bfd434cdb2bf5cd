"""decode-online --json: every line is strict JSON (RFC 8259), and infinite scores stay comparable.

The independent answer is a strict parser (Python's json with non-finite constants refused, as
JavaScript's JSON.parse and jq refuse them) and the comparisons a consumer makes with a
rejection threshold: -inf is below every threshold, +inf above.
"""

import json
import math

import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.online.recognizer import JSON_INFINITY, OnlineResult


def strict_loads(line):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(line, parse_constant=refuse)


def result(score, confidence=0.5):
    return OnlineResult(source="a.wav", text="<rejected>", accepted=False, confidence=confidence, start=0.31,
                        end=0.87654, latency=0.12, endpoint="end-of-input", reason="no-command", score=score)


@pytest.mark.parametrize("score", [-math.inf, math.inf])
def test_an_infinite_score_is_written_as_a_number_that_compares_like_it(score):
    data = strict_loads(result(score).to_json())
    assert data["score"] == math.copysign(JSON_INFINITY, score)
    for threshold in (-1e9, -60.0, 0.0, 3.5, 1e9):  # llr_total thresholds are tens of nats
        assert (data["score"] >= threshold) == (score >= threshold)
    assert float(data["score"]) != score  # a finite double: readers need no special parsing


def test_finite_values_are_rounded_and_a_missing_one_is_null():
    data = strict_loads(result(-12.345678, confidence=math.nan).to_json())
    assert data["score"] == -12.3457 and data["end"] == 0.8765
    assert data["confidence"] is None
    assert data["reason"] == "no-command" and data["words"] == []


def test_the_help_documents_the_number_written_for_infinity():
    text = CliRunner().invoke(cli, ["decode-online", "--help"]).output
    flat = " ".join(text.split())
    assert f"written {json.dumps(-JSON_INFINITY)}," in flat and f"+inf {json.dumps(JSON_INFINITY)}," in flat
    assert "(NaN) is null" in flat
