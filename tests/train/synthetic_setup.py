"""What the synthetic training tests share: a tiny lang dir and a data dir of given features.

The lang dir has phones a b c + SIL without word-position marks; data dirs put each utterance
`<speaker>-<n>` under its speaker. Both go through the project's own writers (prepare_lang,
write_matrices, DataDir.save), so the tests exercise the real file formats.
"""


def make_lang(tmp, lexicon):
    """Write a dict dir for `lexicon` ({word: [phones]}) under `tmp` and prepare `tmp/lang` from it.

    No optional silence (sil_prob 0) and no word-position phones, so the generating models in
    the tests map one-to-one onto the HMMs that training builds.
    """
    from kaldilite.lang.prepare import prepare_lang

    d = tmp / "dict"
    d.mkdir()
    (d / "silence_phones.txt").write_text("SIL\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("a\nb\nc\n")
    (d / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in lexicon.items()) + "<UNK> SIL\n")
    return prepare_lang(d, "<UNK>", tmp / "lang_tmp", tmp / "lang", position_dependent_phones=False, sil_prob=0.0)


def write_data_dir(path, feats, text):
    """A Kaldi data dir at `path` with feats.scp/ark, text, utt2spk and spk2utt (speaker = id before '-')."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import write_matrices

    path.mkdir()
    utts = sorted(feats)
    # save() first: it removes data-dir files the object does not hold, feats.scp among them.
    DataDir(text={u: text[u] for u in utts}, utt2spk={u: u.split("-")[0] for u in utts}).save(path)
    write_matrices([(u, feats[u]) for u in utts], path / "feats.ark", path / "feats.scp")


def word_loop_lang(lang, loop_words, out):
    """A copy of the lang dir `lang` at `out` whose G.fst is a loop over `loop_words`.

    Any of the words, any number of times: one state, start and final, each word arc and the
    final weight costing log 5 (the decoding tests' grammar when an utterance holds several words).
    """
    import shutil

    import numpy as np
    import pywrapfst as fst

    from kaldilite.io.symbols import SymbolTable

    shutil.copytree(lang, out)
    words = SymbolTable.read(out / "words.txt")
    g = fst.VectorFst()
    state = g.add_state()
    g.set_start(state)
    g.set_final(state, float(np.log(5)))
    for word in loop_words:
        g.add_arc(state, fst.Arc(words.id(word), words.id(word), float(np.log(5)), state))
    g.write(str(out / "G.fst"))
    return out
