"""kaldilite.lang: lexicons, Kaldi lang dirs, grammars and pronunciations (the language side).

Follows Kaldi's `utils/prepare_lang.sh` (lang dirs), `utils/lang/make_lexicon_fst.py` (L.fst),
`utils/validate_lang.pl` and `arpa2fst`. Modules: `dictdir` (dict dirs), `prepare`
(prepare-lang), `langdir` (`LangDir.load`), `grammar` (command grammars with fillers and a
garbage phone loop), `arpa` (ARPA -> G.fst), `g2p` (CMUdict / espeak-ng / pypinyin,
`make_dict_dir`), `validate` (validate-lang).
"""

from kaldilite.lang.g2p import make_dict_dir
from kaldilite.lang.langdir import LangDir
from kaldilite.lang.prepare import prepare_lang

__all__ = ["LangDir", "make_dict_dir", "prepare_lang"]
