"""kaldilite.lang: lexicons, Kaldi lang dirs, grammars and pronunciations (the language side).

Follows Kaldi's `utils/prepare_lang.sh` (lang dirs), `utils/lang/make_lexicon_fst.py` (L.fst),
`utils/validate_lang.pl` and `arpa2fst`. Modules: `dictdir` (dict dirs), `prepare`
(prepare-lang), `langdir` (`LangDir.load`), `grammar` (command grammars with fillers and a
garbage phone loop), `arpa` (ARPA -> G.fst), `g2p` (CMUdict / espeak-ng / pypinyin,
`make_dict_dir`), `validate` (validate-lang), `fsts` (small pywrapfst helpers).

The names below are imported from their modules on first use (PEP 562): graph building needs
`langdir` alone, not the grammar, ARPA, g2p and validation code.
"""

from kaldilite.utils.lazy import lazy_exports

# `g2p` names both a module and its function; importing the function here keeps
# `kaldilite.lang.g2p` the function whenever the module gets imported (it is light).
from kaldilite.lang.g2p import g2p, make_dict_dir

__getattr__, __dir__, _lazy_names = lazy_exports(__name__, {
    "langdir": ["LangDir"], "arpa": ["arpa_to_fst"], "grammar": ["make_grammar"], "prepare": ["prepare_lang"],
    "validate": ["validate_lang"],
})
__all__ = sorted([*_lazy_names, "g2p", "make_dict_dir"])
