"""A three-phone, one-state-per-phone transition model and a p-norm network whose outputs are not
near-uniform, the toy nnet2 model parts shared by tests/nnet/test_nnet_folded_preconditioning.py and
tests/nnet/test_nnet_ivector_input.py (tests/ is on sys.path through tests/conftest.py)."""

from kaldilite.hmm import Topology, TransitionModel, monophone_tree
from kaldilite.nnet.network import Nnet

TOPO = """<Topology>
<TopologyEntry>
<ForPhones> 1 2 3 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""


def three_phone_transition_model():
    """Phones 1..3, one emitting state each: three pdfs."""
    topo = Topology.from_text(TOPO)
    return TransitionModel(topo, monophone_tree([[1], [2], [3]], topo))


def trained_looking_nnet(input_dim, num_pdfs, rng):
    """A 2-layer p-norm network (30 -> 10) with a random output layer, so that posteriors are far from uniform."""
    nnet = Nnet.pnorm(input_dim, num_pdfs, num_hidden_layers=2, pnorm_input_dim=30, pnorm_output_dim=10, rng=rng)
    nnet.output_affine.weight[...] = rng.standard_normal(nnet.output_affine.weight.shape)
    return nnet
