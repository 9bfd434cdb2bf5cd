"""nnet layer: nnet2-style p-norm DNN acoustic model, its training, priors and model file.

Follows Kaldi's src/nnet2 (nnet-component.cc: AffineComponent, PnormComponent,
NormalizeComponent, SoftmaxComponent, SumGroupComponent; mixup-nnet.cc; get-feature-transform.cc;
decodable-am-nnet.h) and egs/wsj/s5/steps/nnet2 (train_pnorm_simple2.sh, get_lda.sh,
get_egs.sh). Modules: `components` (layers with forward/backward), `network` (`Nnet`, mix-up,
averaging, `NnetEnsemble`), `preconditioning` (the LDA-like input transform), `train` (SGD training on
alignments: `train_network`, `train_nnet2`), `model` (`NnetAcousticModel`: the decoder's
scorer, log posterior - log prior; `save_nnet_model` / `load_nnet_model`).
"""

from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model, save_nnet_model
from kaldilite.nnet.network import Nnet, NnetEnsemble, average_nnets
from kaldilite.nnet.train import Nnet2Options, train_ensemble, train_network, train_nnet2

__all__ = ["NnetAcousticModel", "load_nnet_model", "save_nnet_model", "Nnet", "NnetEnsemble", "average_nnets",
           "Nnet2Options", "train_ensemble", "train_network", "train_nnet2"]
