"""Scoring verbs: `compute-wer` (Kaldi's compute-wer, plus the per_utt alignment file)."""

import click


@click.command("compute-wer")
@click.argument("ref_rspecifier")
@click.argument("hyp_rspecifier")
@click.option("--mode", type=click.Choice(["present", "all", "strict"]), default="present", show_default=True,
              help="present: score utterances that have a hypothesis; all: score missing ones as empty; "
                   "strict: fail when one is missing.")
@click.option("--text", is_flag=True, hidden=True, help="Accepted for compatibility (Kaldi's deprecated flag).")
@click.option("--per-utt", "per_utt", type=click.Path(dir_okay=False),
              help="Also write Kaldi's wer_details/per_utt alignment (ref/hyp/op/#csid lines) to this file.")
def compute_wer_cmd(ref_rspecifier, hyp_rspecifier, mode, text, per_utt):
    """Print %WER and %SER of hypotheses against reference transcripts.

    Both files are Kaldi text (`utt word word ...`), optionally as `ark:FILE` / `ark,t:FILE`.

    \b
    e.g.: kaldilite compute-wer --mode present data/test/text exp/mono/decode_test/scoring/10.tra.txt
    """
    from kaldilite.score.wer import compute_wer, per_utt_details, read_transcripts
    from kaldilite.utils.atomic import atomic_open

    ref = read_transcripts(ref_rspecifier)
    hyp = read_transcripts(hyp_rspecifier)
    stats = compute_wer(ref, hyp, mode=mode)
    click.echo(stats.report())
    if per_utt:
        with atomic_open(per_utt) as handle:
            for line in per_utt_details(ref, hyp):
                handle.write(line + "\n")


COMMANDS = [compute_wer_cmd]
