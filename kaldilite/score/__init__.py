"""Scoring: word error rate as Kaldi's compute-wer / align-text (`kaldilite.score.wer`)."""

from kaldilite.score.wer import WerStats, align, compute_wer, edit_distance, per_utt_details, read_transcripts

__all__ = ["WerStats", "align", "compute_wer", "edit_distance", "per_utt_details", "read_transcripts"]
