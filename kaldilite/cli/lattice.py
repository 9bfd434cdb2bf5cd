"""Lattice verbs, named after Kaldi's: `lattice-best-path`, `lattice-nbest`, `lattice-scale`,
`lattice-to-post`, `lattice-to-ctm-conf`, `lattice-mbr-decode`, plus `apply-rejection` (the
command/`<rejected>` decision of `kaldilite.decode.rejection` for stored lattices).

Lattices are read from Kaldi text archives of CompactLattices (``lat.JOB.gz`` as `kaldilite
decode --lattice-beam` writes them); an input may be a path or a Kaldi rspecifier such as
``ark:lat.1.gz`` or ``ark:gunzip -c lat.1.gz|``. Several inputs are read in turn.
"""

import logging
import re
from pathlib import Path

import click

log = logging.getLogger(__name__)

_RSPECIFIER = re.compile(r"^(?:ark|scp)(?:,[a-z]+)*:(.*)$")
_GUNZIP = re.compile(r"^\s*gunzip\s+-c\s+(\S+)\s*\|\s*$")


def _lattice_path(spec):
    """The file of a path or a Kaldi rspecifier (``ark:F``, ``ark,t:F``, ``ark:gunzip -c F|``)."""
    from kaldilite.errors import InputError, MissingFileError

    match = _RSPECIFIER.match(spec)
    body = match.group(1) if match else spec
    gz = _GUNZIP.match(body)
    if gz:
        body = gz.group(1)
    elif body.endswith("|") or body == "-":
        raise InputError(f"{spec}: pipes and stdin are not supported; give the lattice file itself (lat.1.gz)")
    if not Path(body).is_file():
        raise MissingFileError(f"{body}: no such lattice archive; decode with --lattice-beam to write lat.JOB.gz")
    return body


def _read_all(specs):
    from kaldilite.decode.lattice import read_lattices

    for spec in specs:
        yield from read_lattices(_lattice_path(spec))


def _word_formatter(symbol_table):
    if not symbol_table:
        return str
    from kaldilite.io.symbols import SymbolTable

    table = SymbolTable.read(symbol_table)
    return table.symbol


def _summary(name, done, failed):
    log.info("%s: done %d lattices, %d failed", name, done, failed)
    click.echo(f"{name}: done {done} lattices, {failed} failed", err=True)
    if done == 0:
        raise click.ClickException(f"{name}: no lattice was processed")


_scale_options = [
    click.option("--acoustic-scale", default=1.0, show_default=True, help="Scale on acoustic costs."),
    click.option("--lm-scale", default=1.0, show_default=True, help="Scale on graph (LM + transition) costs."),
]


def scale_options(func):
    for option in reversed(_scale_options):
        func = option(func)
    return func


@click.command("lattice-best-path")
@scale_options
@click.option("--word-symbol-table", type=click.Path(exists=True, dir_okay=False),
              help="words.txt: write words instead of integer ids.")
@click.option("--alignments", type=click.Path(dir_okay=False), help="Also write the best path's transition-ids "
              "(Kaldi text alignment: utt tid tid ...).")
@click.argument("lattices", nargs=-1, required=True)
@click.argument("transcriptions", type=click.Path(dir_okay=False))
def lattice_best_path_cmd(lattices, transcriptions, acoustic_scale, lm_scale, word_symbol_table, alignments):
    """Best path of each lattice: its words (and alignment), like Kaldi's lattice-best-path.

    \b
    Usage: kaldilite lattice-best-path [options] <lattices>... <transcriptions-out>
     e.g.: kaldilite lattice-best-path --acoustic-scale 0.1 --word-symbol-table exp/mono/graph/words.txt \\
             exp/mono/decode_test/lat.*.gz exp/mono/decode_test/best.txt
    """
    from kaldilite.utils.atomic import atomic_open

    word = _word_formatter(word_symbol_table)
    done = failed = 0
    ali_lines = []
    with atomic_open(transcriptions) as out:
        for key, lat in _read_all(lattices):
            best = lat.scale(lm_scale, acoustic_scale).best_path()
            if best is None:
                log.warning("%s: empty lattice", key)
                failed += 1
                continue
            words, tids, _, _ = best
            out.write(" ".join([key] + [word(w) for w in words]) + "\n")
            ali_lines.append(" ".join([key] + [str(int(t)) for t in tids]) + "\n")
            done += 1
    if alignments:
        with atomic_open(alignments) as out:
            out.writelines(ali_lines)
    _summary("lattice-best-path", done, failed)


@click.command("lattice-nbest")
@click.option("--n", "n", default=10, show_default=True, help="Number of distinct word sequences to keep.")
@scale_options
@click.argument("lattices", nargs=-1, required=True)
@click.argument("nbest_out", type=click.Path(dir_okay=False))
def lattice_nbest_cmd(lattices, nbest_out, n, acoustic_scale, lm_scale):
    """The n best word sequences of each lattice as linear lattices keyed utt-1, utt-2, ... (Kaldi's lattice-nbest).

    Costs in the output are unscaled, as in the input.

    \b
    Usage: kaldilite lattice-nbest [options] <lattices>... <nbest-lattices-out>
     e.g.: kaldilite lattice-nbest --n 5 --acoustic-scale 0.1 lat.1.gz nbest.1.gz
    """
    from kaldilite.decode.lattice import Lattice, write_lattices

    done = failed = 0
    items = []
    for key, lat in _read_all(lattices):
        paths = lat.scale(lm_scale, acoustic_scale).iter_paths()
        seen = set()
        rank = 0
        for _, words, arcs, final in paths:
            if words in seen:
                continue
            seen.add(words)
            rank += 1
            tids = lat.path_tids(arcs, final)
            g = float(lat.graph[arcs].sum() + lat.final_graph[final])
            a = float(lat.acoustic[arcs].sum() + lat.final_acoustic[final])
            linear = [(i, i + 1, w, 0.0, 0.0, []) for i, w in enumerate(words)]
            finals = {len(words): (g, a, tids)}
            items.append((f"{key}-{rank}", Lattice.from_arcs(len(words) + 1, linear, finals)))
            if rank == n:
                break
        if rank == 0:
            failed += 1
            continue
        done += 1
    write_lattices(nbest_out, items)
    _summary("lattice-nbest", done, failed)


@click.command("lattice-scale")
@scale_options
@click.argument("lattices", nargs=-1, required=True)
@click.argument("lattices_out", type=click.Path(dir_okay=False))
def lattice_scale_cmd(lattices, lattices_out, acoustic_scale, lm_scale):
    """Scale the graph and acoustic costs of lattices (Kaldi's lattice-scale).

    \b
    Usage: kaldilite lattice-scale [options] <lattices>... <lattices-out>
     e.g.: kaldilite lattice-scale --acoustic-scale 0.1 lat.1.gz scaled.1.gz
    """
    from kaldilite.decode.lattice import write_lattices

    items = [(key, lat.scale(lm_scale, acoustic_scale)) for key, lat in _read_all(lattices)]
    write_lattices(lattices_out, items)
    _summary("lattice-scale", len(items), 0)


@click.command("lattice-to-post")
@scale_options
@click.argument("lattices", nargs=-1, required=True)
@click.argument("posteriors_out", type=click.Path(dir_okay=False))
def lattice_to_post_cmd(lattices, posteriors_out, acoustic_scale, lm_scale):
    """Per-frame transition-id posteriors by forward-backward (Kaldi's lattice-to-post).

    Output: Kaldi's text posterior form, ``utt [ tid post tid post ] [ ... ]`` one bracket per frame.

    \b
    Usage: kaldilite lattice-to-post [options] <lattices>... <posteriors-out>
     e.g.: kaldilite lattice-to-post --acoustic-scale 0.1 lat.1.gz post.1.txt
    """
    import numpy as np

    from kaldilite.decode.lattice import read_lattices
    from kaldilite.errors import InputError
    from kaldilite.utils.atomic import atomic_open

    done = failed = 0
    with atomic_open(posteriors_out) as out:
        for path in map(_lattice_path, lattices):
            for key, lat in read_lattices(path):
                if lat.num_states == 0 or not np.isfinite(lat.final_graph).any():
                    if lat.num_states:  # (Kaldi's would write NaN posteriors)
                        log.warning("%s: lattice %s has no final state (no path): no posteriors written", path, key)
                    failed += 1
                    continue
                try:
                    frames, tids, post = lat.scale(lm_scale, 1.0).frame_posteriors(acoustic_scale)
                except InputError as exc:  # (frames that disagree: not a decoder's lattice)
                    raise InputError(f"{path}: lattice {key}: {exc}") from None
                bounds = np.searchsorted(frames, np.arange(lat.num_frames() + 1))
                pairs = [f"{tid} {p:.6g}" for tid, p in zip(tids.tolist(), post.tolist())]
                parts = [key] + ["[ " + " ".join(pairs[a:b]) + " ]" for a, b in zip(bounds[:-1], bounds[1:])]
                out.write(" ".join(parts) + "\n")
                done += 1
    _summary("lattice-to-post", done, failed)


@click.command("lattice-to-ctm-conf")
@scale_options
@click.option("--frame-shift", default=0.01, show_default=True, help="Seconds per frame.")
@click.option("--word-symbol-table", type=click.Path(exists=True, dir_okay=False),
              help="words.txt: write words instead of integer ids.")
@click.option("--decode-mbr/--no-decode-mbr", default=True, show_default=True,
              help="Output the minimum-Bayes-risk word sequence (else the best path).")
@click.argument("lattices", nargs=-1, required=True)
@click.argument("ctm_out", type=click.Path(dir_okay=False))
def lattice_to_ctm_conf_cmd(lattices, ctm_out, acoustic_scale, lm_scale, frame_shift, word_symbol_table, decode_mbr):
    """CTM with per-word confidences (Kaldi's lattice-to-ctm-conf): ``utt 1 start duration word conf``.

    The confidence of a word is its time-overlap posterior over the lattice's word sequences;
    times are where the graph emits the word label (see kaldilite.decode.lattice).

    \b
    Usage: kaldilite lattice-to-ctm-conf [options] <lattices>... <ctm-out>
     e.g.: kaldilite lattice-to-ctm-conf --acoustic-scale 0.1 --word-symbol-table words.txt lat.1.gz 1.ctm
    """
    from kaldilite.utils.atomic import atomic_open

    word = _word_formatter(word_symbol_table)
    done = failed = 0
    with atomic_open(ctm_out) as out:
        for key, lat in _read_all(lattices):
            lat = lat.scale(lm_scale, 1.0)
            if decode_mbr:
                result = lat.mbr_decode(acoustic_scale)
                conf = result[1] if result else None
            else:
                conf = lat.word_confidences(acoustic_scale) if lat.num_states else None
            if conf is None:
                failed += 1
                continue
            for w, t0, n, c in conf:
                out.write(f"{key} 1 {t0 * frame_shift:.2f} {n * frame_shift:.2f} {word(w)} {c:.4f}\n")
            done += 1
    _summary("lattice-to-ctm-conf", done, failed)


@click.command("lattice-mbr-decode")
@scale_options
@click.option("--word-symbol-table", type=click.Path(exists=True, dir_okay=False),
              help="words.txt: write words instead of integer ids.")
@click.option("--bayes-risk", type=click.Path(dir_okay=False), help="Also write each utterance's expected "
              "number of word errors (utt risk).")
@click.argument("lattices", nargs=-1, required=True)
@click.argument("transcriptions", type=click.Path(dir_okay=False))
def lattice_mbr_decode_cmd(lattices, transcriptions, acoustic_scale, lm_scale, word_symbol_table, bayes_risk):
    """Minimum-Bayes-risk decoding: the word sequence with the least expected word errors
    (over the lattice's word sequences, Stolcke et al. 1997; Kaldi's lattice-mbr-decode uses sausages).

    \b
    Usage: kaldilite lattice-mbr-decode [options] <lattices>... <transcriptions-out>
     e.g.: kaldilite lattice-mbr-decode --acoustic-scale 0.1 lat.1.gz mbr.txt
    """
    from kaldilite.utils.atomic import atomic_open

    word = _word_formatter(word_symbol_table)
    done = failed = 0
    risks = []
    with atomic_open(transcriptions) as out:
        for key, lat in _read_all(lattices):
            result = lat.scale(lm_scale, 1.0).mbr_decode(acoustic_scale)
            if result is None:
                failed += 1
                continue
            words, _, risk = result
            out.write(" ".join([key] + [word(w) for w in words]) + "\n")
            risks.append(f"{key} {risk:.6g}\n")
            done += 1
    if bayes_risk:
        with atomic_open(bayes_risk) as out:
            out.writelines(risks)
    _summary("lattice-mbr-decode", done, failed)


@click.command("apply-rejection")
@click.option("--acoustic-scale", default=0.083333, show_default=True,
              help="Acoustic scale for posteriors (the decoding --acwt).")
@click.option("--lattice-beam", default=6.0, show_default=True,
              help="The beam the lattices were pruned with (bounds the likelihood ratio).")
@click.option("--rule", "rule_path", type=click.Path(exists=True, dir_okay=False),
              help="Rejection rule JSON (default GRAPH_DIR/rejection.json, else the built-in default).")
@click.option("--threshold", type=float, help="Override the rule's threshold.")
@click.option("--rejection/--no-rejection", default=True, show_default=True,
              help="--no-rejection outputs the best command even when a filler path wins (the baseline).")
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("lattices", nargs=-1, required=True)
@click.argument("decisions_out", type=click.Path(dir_okay=False))
def apply_rejection_cmd(graph_dir, lattices, decisions_out, acoustic_scale, lattice_beam, rule_path, threshold,
                        rejection):
    """Decide command or <rejected> for each lattice with the rejection rule (kaldilite.decode.rejection).

    Output lines: ``utt label confidence llr reason``; a multi-word command's words are joined
    with ``+`` so that every line has five fields (llr is ``NA`` when the grammar has no fillers).

    \b
    Usage: kaldilite apply-rejection [options] <graph-dir> <lattices>... <decisions-out>
     e.g.: kaldilite apply-rejection exp/mono/graph_cmd exp/mono/decode_dev/lat.*.gz decisions.txt
    """
    from kaldilite.decode.confidence import word_sequences_of_lattice
    from kaldilite.decode.rejection import RejectionRule, read_fillers
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.utils.atomic import atomic_open

    words = SymbolTable.read(Path(graph_dir) / "words.txt")
    fillers = read_fillers(graph_dir)
    rule = RejectionRule.load(rule_path) if rule_path else RejectionRule.for_graph(graph_dir)
    if threshold is not None:
        rule = rule.with_threshold(threshold)
    if not rejection:
        from dataclasses import replace

        rule = replace(rule, enabled=False)
    done = accepted = 0
    with atomic_open(decisions_out) as out:
        for key, lat in _read_all(lattices):
            frames = lat.state_frames()
            num_frames = max([int(frames[s]) + len(lat.final_tids[s]) for s in range(lat.num_states)
                              if lat.final_graph[s] != float("inf")], default=0)
            decision = rule.decide(word_sequences_of_lattice(lat, words, num_frames, acoustic_scale, lattice_beam),
                                   fillers)
            llr = "NA" if decision.llr is None else f"{decision.llr:.4f}"
            out.write(f"{key} {decision.label.replace(' ', '+')} {decision.confidence:.4f} {llr} {decision.reason}\n")
            done += 1
            accepted += decision.accepted
    click.echo(f"apply-rejection: {done} utterances, {accepted} accepted, {done - accepted} rejected "
               f"({rule.score} >= {rule.threshold:g})", err=True)
    if done == 0:
        raise click.ClickException("apply-rejection: no lattice was processed")


COMMANDS = [lattice_best_path_cmd, lattice_nbest_cmd, lattice_scale_cmd, lattice_to_post_cmd,
            lattice_to_ctm_conf_cmd, lattice_mbr_decode_cmd, apply_rejection_cmd]
