"""Context expansion (the C in HCLG): phone sequences -> context windows.

Follows Kaldi's src/fstext/context-fst.h: C's input labels index `ilabel_info`, a list whose
entry j is the context window (a tuple of N phone ids, central phone at position P) that H
expands into that window's HMM; entry 0 is ``()`` (epsilon) and a disambiguation symbol is a
one-element tuple holding its negated phone id, as in Kaldi.

For context width 1 (monophone systems) C is the identity: window j is ``(j,)``, so a
lexicon/grammar FST over phone ids is already "CLG" and no composition is needed. A triphone
system (N=3, P=1) only needs `compose_context` to build the real C here; H and the rest of the
graph code work from `ilabel_info` and do not change.
"""

from kaldilite.errors import InputError


def monophone_ilabel_info(phone_ids, disambig_phones):
    """`ilabel_info` for N=1, indexed by phone id: ``(p,)`` phones, ``(-d,)`` disambiguation symbols."""
    real = set(int(p) for p in phone_ids)
    disambig = set(int(d) for d in disambig_phones)
    size = max(real | disambig | {0}) + 1
    info = [()] * size
    for p in real:
        info[p] = (p,)
    for d in disambig:
        info[d] = (-d,)
    return info


def compose_context(fst, context_width, central_position, phone_ids, disambig_phones):
    """Apply C to an FST whose input labels are phone ids; returns (CLG, ilabel_info).

    `phone_ids` are the real phones (not epsilon, not disambiguation symbols).
    """
    if context_width == 1 and central_position == 0:
        return fst, monophone_ilabel_info(phone_ids, disambig_phones)
    raise InputError(
        f"context width {context_width} (central position {central_position}) is not supported yet: "
        "only monophone (N=1) graphs can be built by this version of kaldilite")
