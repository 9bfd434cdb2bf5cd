"""New command words without retraining: pronunciations checked against a fixed phone set.

A trained acoustic model knows exactly the phones of the lang dir it was trained with; a word
made of those phones needs only a new lexicon line, grammar and graph. This module is the gate
before that rebuild (the commands recipe's stage 3, `kaldilite check-pronunciations`):

- every word of the grammar files (commands, fillers) must have a pronunciation in the dict
  dir's lexicon; the missing ones are reported each with its `file:line` and the lexicon line
  `kaldilite g2p` proposes (CMUdict, else espeak-ng; pypinyin for Chinese), restricted to the
  dict dir's phone set (`g2p.restrict_to_phone_set`);
- with `auto_g2p`, those proposed lines are appended to the lexicon instead (each logged), as
  long as every phone of them is in the phone set; `add_pronunciations` (`kaldilite g2p --add`,
  the fix `g2p.g2p_hint` names wherever a word lacks a pronunciation) appends any words' the same way;
- every phone the lexicon uses must be declared in the dict dir's phone files, which are the
  trained inventory: a new phone means a new phone set, hence retraining (the recipe also
  compares the rebuilt lang's phones.txt with the trained one);
- a phone of the trained set that had (almost) no training frames is as unknown to the model as a
  new one: with a trained model dir (its per-pdf occupancy final.occs, as Kaldi's gmm-est
  --write-occs writes it), each grammar word using such a phone is warned about, one line per word
  (`untrained_phones`, `warn_untrained_words`).

Kaldi has no single tool for this; its recipes leave it to `utils/validate_dict_dir.pl` (phone
declarations) and to the OOV listing of `utils/prepare_lang.sh` users run by hand.
"""

import logging
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, where
from kaldilite.lang.dictdir import POSITION_SUFFIXES, read_text_lines
from kaldilite.lang.g2p import (MAX_VARIANTS, dict_phone_set, g2p, g2p_hint, lexicon_file_of, lexicon_has_stress,
                                 lexicon_prons, restrict_to_phone_set)
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)

# The option that adds proposed pronunciations, as each entry point spells it: check-pronunciations'
# flag, and the commands recipe's option, which takes a value.
_AUTO_G2P = "--auto-g2p (check-pronunciations; the commands recipe: ./run.sh --auto-g2p true)"


def grammar_words(paths):
    """Words of commands/fillers files in order of appearance: {word: 'file:line' of its first use}."""
    found = {}
    for path in paths:
        for number, line in read_text_lines(path):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            for word in line.partition("\t")[0].split():
                found.setdefault(word, where(path, number))
    return found


def _lexicon_prons(dict_dir):
    """(lexicon file, [(line number, word, phones)]) of the dict dir's lexiconp.txt or lexicon.txt."""
    lexicon = lexicon_file_of(dict_dir)
    return lexicon, lexicon_prons(lexicon)


def lexicon_words(dict_dir):
    return {word for _, word, _ in _lexicon_prons(dict_dir)[1]}


def check_lexicon_phones(dict_dir):
    """Raise InputError at the first lexicon line using a phone outside the dict dir's phone files."""
    lexicon, prons = _lexicon_prons(dict_dir)
    phone_set = dict_phone_set(dict_dir)
    for number, word, phones in prons:
        for phone in phones:
            if phone not in phone_set:
                raise InputError(
                    f"{where(lexicon, number)}: phone {phone!r} of {word!r} is not in the phone set the models "
                    f"were trained with ({Path(dict_dir) / 'nonsilence_phones.txt'}); write the word with known "
                    f"phones (`kaldilite g2p --lexicon {dict_dir} {word}` substitutes them) or add the phone "
                    f"and retrain from the lang stage"
                )


def propose_pronunciations(word, phone_set, keep_stress, max_variants=MAX_VARIANTS):
    """Lexicon lines `kaldilite g2p --lexicon DICT_DIR WORD` would print for a dict dir of that
    phone set and stress, and the phones it could not map into the set: (lines, source, unmapped_phones)."""
    prons, source = g2p(word, keep_stress=keep_stress, max_variants=max_variants)
    lines, unmapped = [], []
    for pron in prons:
        pron, changes = restrict_to_phone_set(pron, phone_set)
        unmapped += [phone for phone, repl in changes if repl is None]
        line = f"{word} {' '.join(pron)}"
        if line not in lines:
            lines.append(line)
    return lines, source, sorted(set(unmapped))


def _proposals(dict_dir, words, max_variants=MAX_VARIANTS):
    """The lexicon lines proposed for `words` ({word: where it was asked for}) in the dict dir's phone set
    and stress: ({word: (lines, source, where)}, [one line per word that cannot be proposed])."""
    phone_set, keep_stress = dict_phone_set(dict_dir), lexicon_has_stress(lexicon_file_of(dict_dir))
    proposals, problems = {}, []
    for word, loc in words.items():
        lines, source, unmapped = propose_pronunciations(word, phone_set, keep_stress, max_variants)
        if not lines:
            problems.append(f"{loc}: {word!r}: no pronunciation found (CMUdict, espeak-ng, pypinyin); write it by hand")
        elif unmapped:
            problems.append(f"{loc}: {word!r}: {source} gives phones {' '.join(unmapped)} outside the trained "
                            f"phone set ({' | '.join(lines)}); write it with known phones")
        proposals[word] = (lines, source, loc)
    return proposals, problems


def _append_proposals(dict_dir, proposals, how):
    """Append the proposed lines to the dict dir's lexicon.txt and lexiconp.txt, whichever it has (each
    line logged for review, `how` naming the route); returns the lines."""
    added = [line for lines, _, _ in proposals.values() for line in lines]
    # lexiconp.txt gets them with probability 1.0 (each a word's only or equal pronunciation), and a
    # lexicon.txt kept beside it the same lines without it, so that the two still agree
    written = []
    for path in (dict_dir / "lexicon.txt", dict_dir / "lexiconp.txt"):
        if not path.is_file():
            continue
        with_prob = path.name == "lexiconp.txt"
        text = path.read_text(encoding="utf-8-sig")
        with atomic_open(path) as out:
            out.write(text + ("" if not text or text.endswith("\n") else "\n"))
            out.writelines((line.replace(" ", " 1.0 ", 1) if with_prob else line) + "\n" for line in added)
        written.append(str(path))
    for word, (lines, source, loc) in proposals.items():
        for line in lines:
            log.warning("%s: %s: added '%s' to %s (from %s; review it)", how, loc, line, " and ".join(written), source)
    return added


def add_pronunciations(dict_dir, words, max_variants=MAX_VARIANTS):
    """`kaldilite g2p --lexicon DICT_DIR --add WORDS`: the proposed lines of the words DICT_DIR's lexicon
    lacks appended to it as --auto-g2p appends a grammar's (`_append_proposals`); the lines added.
    Raises InputError, adding nothing, when a word has no proposal made of the dict dir's phones."""
    dict_dir = Path(dict_dir)
    known = lexicon_words(dict_dir)
    missing = {w: "command line" for w in words if w not in known}
    if not missing:  # nothing to add: the lexicon files are left as they are, not rewritten
        return []
    proposals, problems = _proposals(dict_dir, missing, max_variants)
    if problems:
        raise InputError("; ".join(problems) + "; nothing was added")
    return _append_proposals(dict_dir, proposals, "g2p --add")


def check_pronunciations(dict_dir, grammar_files, auto_g2p=False):
    """The stage-3 gate: every grammar word has a pronunciation made of known phones.

    Missing words are reported (log warning per word with the proposed line) and raise one
    InputError, or with `auto_g2p` get the proposed lines appended to the lexicon (logged).
    Returns the lexicon lines added.
    """
    dict_dir = Path(dict_dir)
    check_lexicon_phones(dict_dir)
    known = lexicon_words(dict_dir)
    missing = {w: loc for w, loc in grammar_words(grammar_files).items() if w not in known}
    if not missing:
        return []
    lexicon = lexicon_file_of(dict_dir)
    proposals, problems = _proposals(dict_dir, missing)
    if auto_g2p and not problems:
        return _append_proposals(dict_dir, proposals, "auto-g2p")
    for word, (lines, source, loc) in proposals.items():
        if lines:
            log.warning("%s: %r has no pronunciation in %s; `kaldilite g2p --lexicon %s %s` proposes: %s", loc, word,
                        lexicon, dict_dir, word, " | ".join(lines))
    for problem in problems:
        log.warning("%s", problem)
    if problems:
        fix = "fix the words above by hand"
    else:
        fix = f"{g2p_hint(list(missing), dict_dir)}, as re-running with {_AUTO_G2P} does"
    raise InputError(f"{len(missing)} grammar word(s) without a pronunciation in {lexicon}: "
                     + ", ".join(f"{w} ({loc})" for w, loc in missing.items()) + f"; {fix}")


# ------------------------------------------------------------------ phones without training data
# A phone of the trained set may still have had no training frames: the Speech Commands words never
# use EY TH UW Z (only the digits do). Its pdfs keep their initial parameters (the flat-start global
# Gaussian), so a new word using it decodes with a model of nothing, and check_lexicon_phones cannot
# see it. What the model knows is the per-pdf occupancy its last EM update counted (final.occs, as
# Kaldi's gmm-est --write-occs writes it), mapped to phones through the transition model's
# (phone, hmm-state, pdf) tuples.

def base_phone(name, dict_phones):
    """The dict dir's phone a lang phone stands for: 'EY_B' -> 'EY' when EY is a dict phone."""
    if name[-2:] in POSITION_SUFFIXES and name[:-2] in dict_phones:
        return name[:-2]
    return name


def untrained_phones(transition_tuples, pdf_occs, phone_names, dict_phones, min_count=10.0):
    """Dict phones with too little training data: {phone: frames of its least-trained HMM state}.

    `transition_tuples` are the transition model's (phone id, hmm state, forward pdf, self-loop pdf),
    `pdf_occs` the occupancy of each pdf (final.occs), `phone_names` {phone id: name} (phones.txt).
    A phone's HMM state may use several pdfs (its word-position variants and, in a triphone model,
    its contexts); the state's frames are the occupancy summed over them, and the phone counts as
    untrained when one of its states has under `min_count` frames: gmm-est leaves a Gaussian with
    fewer (--min-gaussian-occupancy 10) at its initial value.
    """
    pdf_occs = np.asarray(pdf_occs, dtype=np.float64)
    state_pdfs = {}
    for phone, hmm_state, forward_pdf, self_loop_pdf in transition_tuples:
        name = base_phone(phone_names[int(phone)], dict_phones)
        state_pdfs.setdefault(name, {}).setdefault(int(hmm_state), set()).update((int(forward_pdf),
                                                                                   int(self_loop_pdf)))
    if any(pdf >= len(pdf_occs) for states in state_pdfs.values() for pdfs in states.values() for pdf in pdfs):
        raise InputError(f"the occupancies list {len(pdf_occs)} pdfs, fewer than the transition model uses: "
                         f"final.occs belongs to another model")
    frames = {name: min(float(pdf_occs[sorted(pdfs)].sum()) for pdfs in states.values())
              for name, states in state_pdfs.items()}
    return {name: count for name, count in sorted(frames.items()) if count < min_count}


def grammar_word_phones(dict_dir, grammar_files):
    """{word: (its 'file:line' in the grammar files, set of phones of all its lexicon lines)}."""
    phones = {}
    for _, word, pron in _lexicon_prons(dict_dir)[1]:
        phones.setdefault(word, set()).update(pron)
    return {word: (loc, phones.get(word, set())) for word, loc in grammar_words(grammar_files).items()}


def warn_untrained_words(dict_dir, grammar_files, untrained, model_name):
    """Log one warning per grammar word whose pronunciations use a phone of `untrained`
    ({phone: frames}, from `untrained_phones` of model `model_name`); returns {word: [phones]}."""
    found = {}
    for word, (loc, phones) in grammar_word_phones(dict_dir, grammar_files).items():
        bad = sorted(phones & set(untrained))
        if not bad:
            continue
        found[word] = bad
        counts = ", ".join(f"{p} {untrained[p]:.0f}" for p in bad)
        log.warning("%s: %r uses phone(s) %s that %s had almost no training data for (frames of the "
                    "least-trained HMM state: %s): it decodes with untrained models; record examples of it "
                    "(`kaldilite record`) and retrain, or train on a corpus that has these phones (run.sh --corpus "
                    "DIR)", loc, word, " ".join(bad), model_name, counts)
    return found
