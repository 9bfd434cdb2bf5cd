"""kaldilite.lang: lexicons, Kaldi lang dirs, grammars and pronunciations (the language side).

Follows Kaldi's `utils/prepare_lang.sh` (lang dirs), `utils/lang/make_lexicon_fst.py` (L.fst),
`utils/validate_lang.pl` and `arpa2fst`. Modules: `dictdir` (dict dirs), `prepare`
(prepare-lang), `langdir` (`LangDir.load`), `grammar` (command grammars with fillers and a
garbage phone loop), `arpa` (ARPA -> G.fst), `g2p` (CMUdict / espeak-ng / pypinyin,
`make_dict_dir`), `validate` (validate-lang), `fsts` (small pywrapfst helpers).
"""

from kaldilite.lang.arpa import arpa_to_fst
from kaldilite.lang.g2p import g2p, make_dict_dir
from kaldilite.lang.grammar import make_grammar
from kaldilite.lang.langdir import LangDir
from kaldilite.lang.prepare import prepare_lang
from kaldilite.lang.validate import validate_lang

__all__ = ["LangDir", "arpa_to_fst", "g2p", "make_dict_dir", "make_grammar", "prepare_lang", "validate_lang"]
