"""Graph layer: training graphs and HCLG decoding graphs over transition-ids, built with OpenFst.

- `compiled`: `CompiledFst`, the flat-array form the decoder walks (and its .npz file);
- `context`: C (context windows, `ilabel_info`); identity for monophones;
- `hmm_fst`: H without self-loops and Kaldi's self-loop addition and reweighting;
- `mkgraph`: L o G -> C -> H -> HCLG, as utils/mkgraph.sh;
- `training`: per-utterance training graphs (compile-train-graphs) and `equal_align`.
"""

from kaldilite.graph.compiled import CompiledFst
from kaldilite.graph.mkgraph import build_hclg, load_graph, mkgraph
from kaldilite.graph.training import TrainingGraphCompiler, compile_training_graphs, equal_align

__all__ = ["CompiledFst", "build_hclg", "load_graph", "mkgraph", "TrainingGraphCompiler",
           "compile_training_graphs", "equal_align"]
