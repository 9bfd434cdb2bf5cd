"""HMM layer: topology (Kaldi `topo`), context-dependency tree, transition model.

Follows Kaldi's src/hmm and src/tree: `Topology.read(lang/topo)`, `monophone_tree(roots,
topo)` (as gmm-init-mono), `TransitionModel(topo, tree)` with 1-based transition-ids, and
`silence_tid_mask` (which of them are silence).
"""

from kaldilite.hmm.topology import NO_PDF, HmmState, Topology
from kaldilite.hmm.transition_model import TransitionModel, silence_tid_mask
from kaldilite.hmm.tree import ContextDependency, monophone_tree

__all__ = ["NO_PDF", "HmmState", "Topology", "TransitionModel", "ContextDependency", "monophone_tree",
           "silence_tid_mask"]
