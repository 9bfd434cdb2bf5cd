"""The tiny lang dir the synthetic training tests share: phones a b c + SIL, no position marks."""


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
