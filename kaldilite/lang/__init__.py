"""kaldilite.lang: lexicons, Kaldi lang dirs, grammars and pronunciations (the language side).

Follows Kaldi's `utils/prepare_lang.sh` (lang dirs), `utils/lang/make_lexicon_fst.py` (L.fst),
`utils/validate_lang.pl` and `arpa2fst`. Modules: `dictdir` (dict dirs), `prepare`
(prepare-lang), `langdir` (`LangDir.load`), `grammar` (command grammars with fillers and a
garbage phone loop), `arpa` (ARPA -> G.fst), `g2p` (CMUdict / espeak-ng / pypinyin,
`make_dict_dir`), `validate` (validate-lang), `fsts` (small pywrapfst helpers).

The names below are imported from their modules on first use (PEP 562): graph building needs
`langdir` alone, not the grammar, ARPA, g2p and validation code.
"""

import importlib

# `g2p` names both a module and its function; importing the function here keeps
# `kaldilite.lang.g2p` the function whenever the module gets imported (it is light).
from kaldilite.lang.g2p import g2p, make_dict_dir

_WHERE = {"LangDir": "langdir", "arpa_to_fst": "arpa", "make_grammar": "grammar", "prepare_lang": "prepare",
          "validate_lang": "validate"}

__all__ = ["LangDir", "arpa_to_fst", "g2p", "make_dict_dir", "make_grammar", "prepare_lang", "validate_lang"]


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
