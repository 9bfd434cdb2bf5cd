"""Training an nnet2 p-norm network on frame-level examples, as steps/nnet2/train_pnorm_simple2.sh.

`train_network` is the whole optimisation on in-memory examples (features x pdf targets):

- iterations of `samples_per_iter` shuffled frames (Kaldi's egs archives), `num_epochs` passes;
- minibatch SGD on the minibatch-averaged gradient, learning rate decaying exponentially
  from `initial_learning_rate` to `final_learning_rate` over the iterations (the simple2
  schedule), with classical momentum; Kaldi's max-change: a component's parameter change in
  one minibatch is scaled down to Frobenius norm `max_change` if it is larger;
- after each iteration the objective (average log-probability of the target pdf) and the
  frame accuracy on a fixed training subset and on the validation examples (Kaldi's
  compute_prob_train / compute_prob_valid logs); a WARNING when the validation objective has
  been below its best for `valid_patience` consecutive iterations (default: one epoch's
  iterations, at least 3: the validation objective of a network that is still improving dips
  below its best for a few iterations all the time, so a shorter patience cries wolf);
  `valid_diagnostic_frames` > 0: the per-iteration validation figures on a fixed random subset of
  that many validation frames (Kaldi's valid_diagnostic.egs, get_egs.sh's num_frames_diagnostic), the
  last iteration's also on all of them (the final figures); the combination always uses them all.
  It never changes the network (its own random stream), only what the iteration lines measure, and
  saves most of the diagnostics' cost (a forward pass over every validation frame each iteration:
  ~30% of training CPU with the commands recipe's 29520 validation frames);
  `diagnostic_interval` N > 1: both diagnostics (training subset and validation) only on every Nth
  iteration, each epoch's last and the last one (whose figures are the final ones); the other
  iterations log the minibatch objective alone and the over-training warning counts the iterations
  between measurements. Nothing else reads the figures, so the network is the same for every N
  (Kaldi's nnet2 scripts run compute_prob_* in background jobs that training never waits for; here
  they run in the training process, ~12% of its CPU at the recipe's shapes with N = 1);
- mix-up halfway (`mix_up` > 0: the softmax grows to that many sub-classes, counts from the
  softmax outputs on the training subset, nnet2's mix_up_iter = (iters + first)/2);
- at the end the models of the last iterations (Kaldi's num_models_combine, at most 2/3 of the
  iterations after mix-up) are averaged; the average is kept if its validation objective is
  not worse than the last model's (a one-choice version of nnet-combine-fast); `combine="optimize"`:
  nnet-combine-fast itself, weights per model and layer fitted on the validation frames
  (`kaldilite.nnet.combine`);
- priors: the average posterior over the training frames (nnet-adjust-priors); `prior_scale`
  (recorded in the model) is the power of the prior that decoding divides by;
- `dropout_proportion` > 0: that fraction of each hidden layer's outputs zeroed in every training
  minibatch (nnet3's dropout after each hidden layer; nnet2 had a DropoutComponent), the decoded
  network unchanged: a regularizer for small corpora of few speakers;
- `spec_augment_*` (SpecAugment, Park et al. 2019, as Kaldi's nnet3 spec-augment-layer after an
  idct-layer; `kaldilite.nnet.spec_augment`): random mel-bin bands and time spans of each training
  example masked to the CMVN mean, on the spliced frames before the preconditioning transform,
  drawn afresh for every minibatch from their own random stream (the example order stays that of
  the same seed without SpecAugment); the diagnostics, priors and the decoded network see clean input;
- `vtlp_max_warp` > 0 (VTLP, Jaitly & Hinton 2013; `kaldilite.nnet.vtlp`): in the same log-mel step,
  before the masks, each example's bins warped by Kaldi's VTLN warp with a factor uniform on
  1 +- vtlp_max_warp, the mel geometry read from `vtlp_config` (the features' MFCC config);
- `update="rms"`: per-parameter RMS-normalized steps (Adam) instead of momentum SGD, a light
  stand-in for nnet2's natural-gradient (online preconditioned) updates;
- `num_averaged_networks` > 1 (`train_ensemble`): several networks from consecutive seeds on the
  same examples, their posteriors averaged at decode time (`NnetEnsemble`, geometric mean by
  default); not in Kaldi's nnet2. The members train independently, so they train as parallel
  processes (`nj`, at most one per network: jobs of `kaldilite.parallel.run_jobs`'s local pool, forked
  after the examples are loaded, which the children share copy-on-write), each exactly as it would
  alone: the result does not depend on `nj`;
- `ensemble_size` > 1 with `initial_beta` / `final_beta` > 0: Kaldi's ensemble training
  (steps/nnet2/train_pnorm_ensemble.sh, nnet-train-ensemble: src/nnet2/train-nnet-ensemble.cc):
  the members (member k > 1 initialised from seed + 100 (k - 1)) train side by side on the same
  minibatches (same SpecAugment masks), each on the target one-hot label + beta x the members'
  AVERAGE posterior (the arithmetic mean, as train-nnet-ensemble.cc computes it; the script's comment
  says geometric), the average held fixed in the gradient: for member i the logit gradient is
  cross-entropy's (y_i - onehot) plus beta (y_i - average), a pull towards the ensemble. beta rises
  linearly from `initial_beta` to `final_beta` over the iterations (the script's perl: iteration x
  of n gets initial + (x + 1)(final - initial) / n). Each member is combined as one network would be
  and member 1 is the model (Kaldi copies final.1.mdl to final.mdl): decoding costs one network;

A fixed `seed` fixes initialisation, shuffling, subsets and mix-up noise, so two runs on the
same data with the same BLAS produce identical models.

`train_nnet2` is the step on files (DATA LANG ALI_DIR EXP): per-speaker CMVN like the GMM
front end, splice +-`splice_width` (on the fly, per minibatch: `SplicedFrames` keeps only the
unspliced frames in memory), examples from the alignments, a validation subset of
`num_utts_subset` utterances held out of training, the LDA-like preconditioning transform
(`kaldilite.nnet.preconditioning`), then `train_network`, writing EXP/final.mdl with
everything its input needs. With `transform_dir` (train_pnorm_simple2.sh --transform-dir, as
get_egs2.sh builds the egs for feat_type=lda) the frames are instead the alignment system's own
features (CMVN, splice, final.mat) through each speaker's fMLLR transform from
TRANSFORM_DIR/trans.*, then spliced +-`splice_width` and preconditioned; the model records
that it needs such transforms (`NnetAcousticModel.fmllr_pipeline`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time

import numpy as np

from kaldilite.errors import InputError
from kaldilite.nnet.components import cross_entropy_of_posteriors, softmax
from kaldilite.nnet.network import Nnet, NnetEnsemble, average_nnets
from kaldilite.nnet.updates import momentum_update, rms_update

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Nnet2Options:
    """Training options, named after train_pnorm_simple2.sh's (see `train_network` for the schedule)."""

    num_epochs: int = 15
    samples_per_iter: int = 20000
    minibatch_size: int = 128
    initial_learning_rate: float = 0.04
    final_learning_rate: float = 0.004
    momentum: float = 0.9
    update: str = "sgd"  # "sgd": momentum SGD as nnet2's simple update; "rms": see rms_update
    rms_decay: float = 0.999
    max_change: float = 2.0
    num_hidden_layers: int = 2
    pnorm_input_dim: int = 1000
    pnorm_output_dim: int = 100
    p: float = 2.0
    bias_stddev: float = 0.5
    mix_up: int = 0
    dropout_proportion: float = 0.0  # > 0: dropout on each hidden layer's output while training
    # SpecAugment (kaldilite.nnet.spec_augment; Kaldi's spec-augment-layer options): 0 = off
    spec_augment_freq_max_proportion: float = 0.0
    spec_augment_time_zeroed_proportion: float = 0.0
    spec_augment_time_mask_max_frames: int = 2
    spec_augment_cepstral_lifter: float = 22.0  # the MFCC extractor's --cepstral-lifter (idct-layer's)
    # VTLP (kaldilite.nnet.vtlp): warp factors uniform on 1 +- vtlp_max_warp per example, 0 = off; the mel range
    # and --vtln-low/--vtln-high come from vtlp_config, the features' MFCC (or fbank) config file
    vtlp_max_warp: float = 0.0
    vtlp_config: str = ""
    mix_up_min_count: float = 1000.0
    max_models_combine: int = 20
    combine: str = "average"  # "optimize": nnet-combine-fast's per-layer weights (kaldilite.nnet.combine)
    valid_patience: int = 0  # 0: one epoch's iterations (at least 3)
    diagnostic_frames: int = 5000
    valid_diagnostic_frames: int = 0  # > 0: per-iteration validation figures on this many frames (0: all)
    diagnostic_interval: int = 1  # > 1: the diagnostics every Nth iteration (+ each epoch's last, the last)
    prior_subset_size: int = 100000
    prior_scale: float = 1.0  # decoding divides by prior^prior_scale (recorded in the model)
    seed: int = 0
    # > 1: that many networks from seeds seed.. seed+n-1, trained independently, posteriors averaged when decoding
    num_averaged_networks: int = 1
    posterior_averaging: str = "geometric"  # of the averaged networks: "geometric" or "arithmetic" (NnetEnsemble)
    # > 1 with a beta > 0: Kaldi's ensemble training (train_pnorm_ensemble.sh); member 1 is the model
    ensemble_size: int = 1
    initial_beta: float = 0.0
    final_beta: float = 0.0
    # processes training the averaged networks at once (0: one per network, at most the cores); never changes results
    nj: int = 0
    # train_pnorm_simple2.sh --realign-epochs: space-separated epochs at whose start the current network realigns
    # the data and training goes on with its alignments (kaldilite.nnet.realign; train_nnet2 needs a `realigner`)
    realign_epochs: str = ""
    # file-level options (train_nnet2)
    # steps/copy_ali_dir.sh's practice: space-separated COPY=SOURCE id prefixes (or COPY alone: SOURCE empty);
    # an utterance whose id starts with COPY trains on the alignment of SOURCE + the rest of its id, even when
    # ALI_DIR aligned it itself (`copied_alignment`)
    copy_ali_prefixes: str = ""
    splice_width: int = 4
    lda_dim: int = 0
    within_class_factor: float = 0.0001
    num_utts_subset: int = 300
    feature_type: str = ""  # the raw features' name; "": the training data's (`recorded_feature_type`)
    norm_vars: bool | None = None  # CMVN variance normalization; None: as the alignment model's
    transform_dir: str | None = None  # fMLLR transforms (trans.*): train on the SAT system's adapted features
    # train on the online decoder's CMVN (apply-cmvn-online per speaker, prior = the data dir's cmvn.scp
    # summed), recorded in the model as cmvn 'online' (see FeaturePipeline), carried through each speaker's
    # utterances as decode-online carries it (`OnlineCmvnEpochs`):
    online_cmvn: bool = False
    # the order: "random" (drawn from --seed, afresh every epoch) or "spk2utt" (the data dir's, as Kaldi's
    # apply-cmvn-online: sorted ids, which for Speech Commands sorts a speaker's clips BY WORD, a cue no live
    # user gives)
    online_cmvn_order: str = "spk2utt"
    # weight of the frames the alignment puts on silence phones when an utterance joins the carried
    # stats (decode-online's --cmvn-silence-weight, which weighs its best path's; 1: every frame, as Kaldi's
    # apply-cmvn-online); recorded in the model
    online_cmvn_silence_weight: float = 1.0
    # train_pnorm_simple2.sh --online-ivector-dir: extract-ivectors-online's output for DATA; each frame's i-vector
    # (row t // ivector_period) appended to its spliced features, the preconditioning over both (get_lda.sh)
    online_ivector_dir: str | None = None

    def __post_init__(self):
        if self.num_epochs < 1 or self.samples_per_iter < 1 or self.minibatch_size < 1:
            raise InputError("--num-epochs, --samples-per-iter and --minibatch-size must be positive")
        if not 0 < self.final_learning_rate <= self.initial_learning_rate:
            raise InputError("need 0 < --final-learning-rate <= --initial-learning-rate")
        if self.pnorm_output_dim < 1 or self.pnorm_input_dim % self.pnorm_output_dim:
            raise InputError(f"--pnorm-input-dim {self.pnorm_input_dim} must be a multiple of "
                             f"--pnorm-output-dim {self.pnorm_output_dim}")
        self.copy_ali_prefix_pairs()  # a malformed --copy-ali-prefixes fails before any work
        if self.ensemble_size < 1 or self.num_averaged_networks < 1:
            raise InputError(f"--ensemble-size ({self.ensemble_size}) and --num-averaged-networks "
                             f"({self.num_averaged_networks}) must be at least 1")
        if self.ensemble_size > 1 and self.num_averaged_networks > 1:
            raise InputError("--ensemble-size (Kaldi's ensemble training: one network ships) and "
                             "--num-averaged-networks (averaged networks ship) exclude each other; choose one")
        if self.posterior_averaging not in NnetEnsemble.AVERAGING:
            raise InputError(f"--posterior-averaging must be {' or '.join(NnetEnsemble.AVERAGING)}, got "
                             f"{self.posterior_averaging!r}")
        if self.nj < 0:
            raise InputError(f"--nj must be 0 (automatic) or positive, got {self.nj}")
        if self.initial_beta < 0 or self.final_beta < 0:
            raise InputError(f"--initial-beta {self.initial_beta} and --final-beta {self.final_beta} "
                             "must not be negative")
        if self.ensemble_size > 1 and not (self.initial_beta > 0 or self.final_beta > 0):
            raise InputError(f"--ensemble-size {self.ensemble_size} is Kaldi's ensemble training, which "
                             "needs --initial-beta/--final-beta > 0 (e.g. 0.1 and 6); for independently trained "
                             f"networks averaged when decoding use --num-averaged-networks {self.ensemble_size}")
        if self.ensemble_training and self.mix_up:
            raise InputError("ensemble training (--initial-beta/--final-beta > 0) with --mix-up is not "
                             "implemented; set --mix-up 0")
        epochs = self.realign_epoch_list()
        if any(not 0 < e < self.num_epochs for e in epochs) or (epochs and self.num_networks > 1):
            raise InputError(f"--realign-epochs {self.realign_epochs!r}: epochs strictly between 0 and "
                             f"--num-epochs {self.num_epochs}, with one network (--ensemble-size 1, "
                             "--num-averaged-networks 1)")
        if self.combine not in ("average", "optimize"):
            raise InputError(f"--combine must be average or optimize, got {self.combine!r}")
        if self.online_cmvn_order not in ("random", "spk2utt"):
            raise InputError(f"--online-cmvn-order must be random or spk2utt, got {self.online_cmvn_order!r}")
        if not 0.0 <= self.online_cmvn_silence_weight <= 1.0:
            raise InputError(f"--online-cmvn-silence-weight must be in [0, 1], got {self.online_cmvn_silence_weight}")
        if self.update not in ("sgd", "rms"):
            raise InputError(f"--update must be sgd or rms, got {self.update!r}")
        if not 0.0 <= self.prior_scale <= 1.0:
            raise InputError(f"--prior-scale must be in [0, 1], got {self.prior_scale}")
        if not 0.0 <= self.dropout_proportion < 0.9:
            raise InputError(f"--dropout-proportion must be in [0, 0.9), got {self.dropout_proportion}")
        if not 0.0 <= self.momentum < 1.0:
            raise InputError(f"--momentum must be in [0, 1), got {self.momentum}")
        vtlp = self.vtlp_warp()  # checks the VTLP options and reads their config (once: `_vtlp_warp`)
        self.spec_augment(1, vtlp.num_mel_bins if vtlp else 1)  # checks the SpecAugment options

    @property
    def num_networks(self):
        """Networks trained: the averaged ones, or Kaldi's co-trained ensemble."""
        return max(self.num_averaged_networks, self.ensemble_size)

    def parallel_jobs(self):
        """Processes that train the averaged networks at once: `nj`, else one per network up to the cores."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(self.num_averaged_networks, self.nj or cores))

    @property
    def ensemble_training(self):
        """Kaldi's ensemble training (train_pnorm_ensemble.sh): members trained together, member 1 shipped."""
        return self.ensemble_size > 1 and (self.initial_beta > 0 or self.final_beta > 0)

    def ensemble_beta(self, iteration, num_iters):
        """train_pnorm_ensemble.sh's beta of iteration `iteration` (0-based) of `num_iters`: linear, ending at
        final_beta."""
        return self.initial_beta + (iteration + 1) * (self.final_beta - self.initial_beta) / num_iters

    @property
    def spec_augment_enabled(self):
        """Whether training examples are augmented at all: `SpecAugment.enabled` of these options (one rule)."""
        vtlp = self.vtlp_warp()
        return self.spec_augment(1, vtlp.num_mel_bins if vtlp else 1).enabled

    def vtlp_warp(self):
        """The `VtlpWarp` of --vtlp-max-warp over the mel bins of --vtlp-config's features, or None (off)."""
        if self.vtlp_max_warp == 0:
            return None
        if not self.vtlp_config:
            raise InputError("--vtlp-max-warp needs --vtlp-config: the MFCC or fbank config the features were made "
                             "with (e.g. conf/mfcc_hires.conf), for their mel range")
        try:
            version = os.stat(self.vtlp_config)
            version = (version.st_mtime_ns, version.st_size)
        except OSError:
            version = None  # read_config says what is wrong in one line
        return _vtlp_warp(self.vtlp_config, version, self.feature_type.startswith("fbank"),
                          self.spec_augment_cepstral_lifter, self.vtlp_max_warp)

    def spec_augment(self, num_context, dim):
        """The `SpecAugment` of these options for spliced examples of `num_context` x `dim` features."""
        from kaldilite.nnet.spec_augment import SpecAugment

        domain = "fbank" if self.feature_type.startswith("fbank") else "mfcc"
        return SpecAugment(num_context, dim, freq_max_proportion=self.spec_augment_freq_max_proportion,
                           time_zeroed_proportion=self.spec_augment_time_zeroed_proportion,
                           time_mask_max_frames=self.spec_augment_time_mask_max_frames, domain=domain,
                           cepstral_lifter=self.spec_augment_cepstral_lifter, vtlp=self.vtlp_warp())

    def copy_ali_prefix_pairs(self):
        """--copy-ali-prefixes as ((copy prefix, source prefix), ...)."""
        return parse_copy_ali_prefixes(self.copy_ali_prefixes)

    def realign_epoch_list(self):
        try:
            return [float(e) for e in str(self.realign_epochs).replace(",", " ").split()]
        except ValueError:
            raise InputError(f"--realign-epochs must be numbers, got {self.realign_epochs!r}") from None


@functools.lru_cache(maxsize=16)
def _vtlp_warp(vtlp_config, version, fbank, cepstral_lifter, max_warp):
    """`Nnet2Options.vtlp_warp`: --vtlp-config read and checked once per process and file version (its
    modification time and size), however often the options (or copies of them) ask."""
    from kaldilite.feat.options import FbankOptions, MfccOptions
    from kaldilite.io.config import read_config
    from kaldilite.nnet.vtlp import VtlpWarp

    feature_opts = read_config(vtlp_config, FbankOptions if fbank else MfccOptions)
    if not fbank and feature_opts.cepstral_lifter != cepstral_lifter:
        raise InputError(f"{vtlp_config}: --cepstral-lifter {feature_opts.cepstral_lifter:g} differs from "
                         f"--spec-augment-cepstral-lifter {cepstral_lifter:g}; set it to the features' value")
    if not fbank and feature_opts.num_ceps != feature_opts.mel_opts.num_mel_bins:
        raise InputError(f"{vtlp_config}: VTLP warps mel bins, which {feature_opts.num_ceps} cepstra of "
                         f"{feature_opts.mel_opts.num_mel_bins} mel bins cannot give back; train on all the "
                         "cepstra (--num-ceps = --num-mel-bins, e.g. conf/mfcc_hires.conf)")
    return VtlpWarp.from_feature_options(feature_opts, max_warp)


@dataclasses.dataclass
class TrainingResult:
    nnet: Nnet
    priors: np.ndarray
    history: list
    seconds: float
    frames_per_second: float
    # ensemble training: every member's (network, priors), member 1 first (= nnet, priors)
    members: list = dataclasses.field(default_factory=list)


def learning_rate(iteration, num_iters, initial, final):
    """Exponential decay: `initial` at iteration 0, `final` at the last iteration."""
    if num_iters <= 1:
        return initial
    return initial * (final / initial) ** (iteration / (num_iters - 1))


def train_network(train_feats, train_targets, valid_feats, valid_targets, num_pdfs, opts: Nnet2Options,
                  nnet=None, with_priors=True, realign=None, co_trained=1, new_epoch=None):
    """SGD training of a p-norm network (see the module docstring) -> TrainingResult (its priors
    None without `with_priors`: an ensemble member, whose ensemble estimates its own). `realign`:
    nnet -> (train targets, validation targets), called at the start of each of `opts.realign_epochs`.
    `co_trained` > 1: that many networks trained together (Kaldi's ensemble training, with beta from
    `opts.ensemble_beta`: 0 when both betas are 0); the result is member 1, whose initialisation,
    example order and dropout are those of the same call with `co_trained` 1, and `members` holds all.
    `new_epoch`: (seed, epoch) -> None, called before the first iteration of every epoch (0 included), e.g.
    to re-normalize the examples' frames in place (`OnlineCmvnEpochs.renormalize`)."""
    start = time.perf_counter()
    rng = np.random.default_rng(opts.seed)
    if new_epoch is not None:
        new_epoch(opts.seed, 0)
    if not isinstance(train_feats, SplicedFrames):
        train_feats = np.ascontiguousarray(train_feats, dtype=np.float32)
    train_targets = np.asarray(train_targets, dtype=np.int64)
    num_frames = len(train_targets)
    if num_frames == 0:
        raise InputError("no training examples")
    if train_targets.max() >= num_pdfs or train_targets.min() < 0:
        raise InputError(f"targets outside 0..{num_pdfs - 1} (alignments from another tree?)")
    if nnet is None:
        nnet = Nnet.pnorm(train_feats.shape[1], num_pdfs, num_hidden_layers=opts.num_hidden_layers,
                          pnorm_input_dim=opts.pnorm_input_dim, pnorm_output_dim=opts.pnorm_output_dim, p=opts.p,
                          bias_stddev=opts.bias_stddev, rng=rng)
    nnet.check_input(train_feats, "training examples")
    log.info("network: %s", nnet.describe())
    if co_trained > 1 and (opts.mix_up or realign):
        raise InputError("ensemble training with --mix-up or --realign-epochs is not implemented")
    # the other members of ensemble training: own initialisation and dropout streams, member 1's untouched
    partners = [Nnet.pnorm(train_feats.shape[1], num_pdfs, num_hidden_layers=opts.num_hidden_layers,
                           pnorm_input_dim=opts.pnorm_input_dim, pnorm_output_dim=opts.pnorm_output_dim, p=opts.p,
                           bias_stddev=opts.bias_stddev, rng=np.random.default_rng(opts.seed + 100 * k))
                for k in range(1, co_trained)]
    partner_rngs = [np.random.default_rng([opts.seed + 100 * k, 3]) for k in range(1, co_trained)]
    partner_velocities = [{} for _ in partners]
    partner_kept = [[] for _ in partners]
    spec_augment = augment_rng = None
    if opts.spec_augment_enabled:
        if not isinstance(train_feats, SplicedFrames):
            raise InputError("SpecAugment masks the spliced frames before the preconditioning "
                             "transform; give the training examples as SplicedFrames")
        spec_augment = opts.spec_augment(2 * train_feats.splice_width + 1, train_feats.frames.shape[1])
        # its own stream: the shuffling, subsets and initialisation stay those of the same seed without it
        augment_rng = np.random.default_rng([opts.seed, 1])
        log.info("%s", spec_augment.describe())
    iters_per_epoch = max(1, round(num_frames / opts.samples_per_iter))
    num_iters = opts.num_epochs * iters_per_epoch
    mix_up_iter = num_iters // 2 if opts.mix_up > nnet.num_pdfs else None
    first_after_mixup = 0 if mix_up_iter is None else mix_up_iter + 1
    num_combine = max(1, min(max(opts.max_models_combine, iters_per_epoch),
                             (2 * (num_iters - first_after_mixup)) // 3))
    log.info("%d training frames, %d validation frames; %d epochs x %d iterations per epoch = %d iterations; "
             "mix-up %s; averaging the last %d models", num_frames, 0 if valid_targets is None else len(valid_targets),
             opts.num_epochs,
             iters_per_epoch, num_iters, f"to {opts.mix_up} at iteration {mix_up_iter}" if mix_up_iter is not None
             else "off", num_combine)
    patience = opts.valid_patience if opts.valid_patience > 0 else max(3, iters_per_epoch)
    diag_index = rng.choice(num_frames, min(opts.diagnostic_frames, num_frames), replace=False)
    diag_feats, diag_targets = train_feats[diag_index], train_targets[diag_index]
    has_valid = valid_targets is not None and len(valid_targets) > 0
    # the per-iteration validation frames: all, or a fixed subset drawn from its own stream (the training
    # examples' order stays that of the seed)
    valid_diag_index = None
    if has_valid and 0 < opts.valid_diagnostic_frames < len(valid_targets):
        valid_diag_index = np.sort(np.random.default_rng([opts.seed, 4]).choice(
            len(valid_targets), opts.valid_diagnostic_frames, replace=False))
        valid_diag_feats = valid_feats[valid_diag_index]
        log.info("per-iteration validation figures on %d of the %d validation frames", len(valid_diag_index),
                 len(valid_targets))

    def valid_diagnostics(net):
        if valid_diag_index is None:
            return net.evaluate(valid_feats, valid_targets)
        return net.evaluate(valid_diag_feats, valid_targets[valid_diag_index])

    velocities = {}
    history, kept = [], []
    best_valid, best_iter, worse_streak, last_measured = -np.inf, -1, 0, -1
    diagnostic_iters = diagnostic_iterations(num_iters, iters_per_epoch, opts.diagnostic_interval)
    order = rng.permutation(num_frames)
    cursor = 0
    realign_iters = {round(e * iters_per_epoch) for e in opts.realign_epoch_list()} if realign else set()
    for iteration in range(num_iters):
        lr = learning_rate(iteration, num_iters, opts.initial_learning_rate, opts.final_learning_rate)
        if new_epoch is not None and iteration and iteration % iters_per_epoch == 0:
            new_epoch(opts.seed, iteration // iters_per_epoch)
        if iteration in realign_iters:  # new targets: the diagnostics and the validation best start again
            train_targets, valid_targets = realign(nnet)
            diag_targets = train_targets[diag_index]
            best_valid, worse_streak = -np.inf, 0
        if iteration == mix_up_iter:
            softmax = nnet.components[nnet._softmax_index]
            counts = softmax.forward(nnet.logits(diag_feats)).astype(np.float64).sum(axis=0)
            counts *= num_frames / len(diag_targets)
            nnet.mix_up(counts, opts.mix_up, rng, min_count=opts.mix_up_min_count)
            velocities.clear()
        objective_sum = correct = seen = 0
        while seen < opts.samples_per_iter and seen < num_frames:
            if cursor >= num_frames:
                order = rng.permutation(num_frames)
                cursor = 0
            batch = order[cursor:cursor + opts.minibatch_size]
            cursor += len(batch)
            seen += len(batch)
            inputs = (train_feats[batch] if spec_augment is None
                      else train_feats.augmented(batch, spec_augment, augment_rng))
            if partners:
                objective, right = ensemble_step_gradients([nnet, *partners], inputs, train_targets[batch],
                                                           opts.ensemble_beta(iteration, num_iters),
                                                           opts.dropout_proportion, [rng, *partner_rngs])[0]
            else:
                objective, right = nnet.train_step_gradients(inputs, train_targets[batch], opts.dropout_proportion,
                                                             rng)
            objective_sum += objective
            correct += right
            for net, state in zip([nnet, *partners], [velocities, *partner_velocities]):
                if opts.update == "rms":
                    rms_update(net, state, lr, len(batch), opts.momentum, opts.rms_decay, opts.max_change)
                else:
                    momentum_update(net, state, lr / len(batch), opts.momentum, opts.max_change)
        record = {"iter": iteration, "learning_rate": lr, "minibatch_objf": objective_sum / seen}
        message = f"iteration {iteration}/{num_iters}: lr {lr:.5f}, minibatch objf {objective_sum / seen:.4f}"
        measured = iteration in diagnostic_iters
        if measured:
            train_objf, train_acc = nnet.evaluate(diag_feats, diag_targets)
            record.update(train_objf=train_objf, train_acc=train_acc)
            message += f"; train objf {train_objf:.4f} accuracy {train_acc:.4f}"
        if measured and has_valid:
            valid_objf, valid_acc = valid_diagnostics(nnet)
            record.update(valid_objf=valid_objf, valid_acc=valid_acc)
            message += f"; validation objf {valid_objf:.4f} accuracy {valid_acc:.4f}"
            if valid_objf > best_valid:
                best_valid, best_iter, worse_streak = valid_objf, iteration, 0
            elif iteration != mix_up_iter:
                streak_before, worse_streak = worse_streak, worse_streak + iteration - last_measured
                if streak_before < patience <= worse_streak:
                    log.warning("validation objective has been worse than its best (%.4f at iteration %d) for %d "
                                "iterations (now %.4f): over-training? consider fewer --num-epochs or a smaller "
                                "network", best_valid, best_iter, worse_streak, valid_objf)
        if measured:
            last_measured = iteration
        if partners:
            record["beta"] = opts.ensemble_beta(iteration, num_iters)
            # the other members' validation objf once per epoch: every iteration would cost ~20% more CPU
            if has_valid and ((iteration + 1) % iters_per_epoch == 0 or iteration + 1 == num_iters):
                record["member_valid_objf"] = [valid_objf] + [valid_diagnostics(p)[0] for p in partners]
                message += "; members' validation objf " + " ".join(f"{v:.4f}" for v in record["member_valid_objf"])
            message += f"; beta {record['beta']:.3f}"
        if valid_diag_index is not None and iteration + 1 == num_iters:  # the final figures: every frame
            diag_objf, diag_acc = valid_objf, valid_acc
            valid_objf, valid_acc = nnet.evaluate(valid_feats, valid_targets)
            record.update(valid_objf=valid_objf, valid_acc=valid_acc, valid_diagnostic_objf=diag_objf,
                          valid_diagnostic_acc=diag_acc)
            message += f"; all {len(valid_targets)} validation frames: objf {valid_objf:.4f} accuracy {valid_acc:.4f}"
        log.info(message)
        history.append(record)
        if iteration >= num_iters - num_combine:
            kept.append(nnet.copy())
            for partner, partner_models in zip(partners, partner_kept):
                partner_models.append(partner.copy())
    final = _combine(kept, nnet, valid_feats, valid_targets, opts) if has_valid else average_nnets(kept)
    priors = estimate_priors(final, train_feats, opts.prior_subset_size, rng) if with_priors else None
    members = []
    if partners:
        members.append((final, priors))
        for k, (partner, partner_models) in enumerate(zip(partners, partner_kept), start=2):
            log.info("ensemble member %d:", k)
            combined = (_combine(partner_models, partner, valid_feats, valid_targets, opts) if has_valid
                        else average_nnets(partner_models))
            members.append((combined, estimate_priors(combined, train_feats, opts.prior_subset_size,
                                                      np.random.default_rng([opts.seed + 100 * (k - 1), 2]))
                            if with_priors else None))
    seconds = time.perf_counter() - start
    frames = num_iters * min(opts.samples_per_iter, num_frames)
    log.info("trained on %d frames (%d iterations) in %.1f s: %.0f frames/s", frames, num_iters, seconds,
             frames / seconds)
    return TrainingResult(final, priors, history, seconds, frames / seconds, members)


def diagnostic_iterations(num_iters, iters_per_epoch, interval=1):
    """The iterations whose diagnostics `train_network` computes: every `interval`th from 0, each epoch's last
    and the last."""
    interval = max(1, interval)
    return ({i for i in range(0, num_iters, interval)} | {i for i in range(num_iters) if (i + 1) % iters_per_epoch == 0}
            | {num_iters - 1})


def ensemble_step_gradients(nets, inputs, targets, beta, dropout_proportion=0.0, rngs=None):
    """One minibatch of Kaldi's ensemble training (nnet-train-ensemble) -> [(objective, correct)] per member.

    Member i's objective is sum_n log y_i[n, target_n] + beta sum_n sum_k a[n, k] log y_i[n, k], with
    a = the members' average posterior, treated as a constant (train-nnet-ensemble.cc: the target
    one-hot + beta a, the derivative target / y_i); each member is left with the gradient of its own
    negative objective, (y_i - onehot) + beta (y_i - a) w.r.t. its logits. The objective returned is
    the supervision part alone (what Kaldi logs). Pdf posteriors only: no mix-up sub-classes.
    """
    rngs = rngs or [None] * len(nets)
    forwards = [net.train_forward(inputs, dropout_proportion, r) for net, r in zip(nets, rngs)]
    posteriors = [softmax(logits.astype(np.float32, copy=True)) for logits, _ in forwards]
    average = posteriors[0].copy()
    for post in posteriors[1:]:
        average += post
    average /= np.float32(len(nets))
    out = []
    for net, (logits, masks), post in zip(nets, forwards, posteriors):
        if net.sum_group is not None:
            raise InputError("nnet ensemble training: mixed-up softmax (sub-classes) not supported")
        objective, correct, grad = cross_entropy_of_posteriors(post, targets)
        if beta:
            grad += np.float32(beta) * (post - average)
        net.train_backward(grad, masks)
        out.append((objective, correct))
    return out


def train_ensemble(train_feats, train_targets, valid_feats, valid_targets, num_pdfs, opts: Nnet2Options,
                   realign=None, log_dir=None, new_epoch=None):
    """`train_network` once, or `num_averaged_networks` times from seeds seed, seed+1, ... -> TrainingResult.
    `new_epoch`: `train_network`'s (each member calls it with its own seed; the ensemble's priors are then
    estimated on the frames of `new_epoch(seed, 0)`, whichever member ran last in this process).

    Members see the same examples and validation set and differ only in their random start and
    example order; they train in up to `opts.parallel_jobs()` processes at once, each member
    exactly as alone (`train_members`; network k's log `log_dir/train_network.k.log`). The ensemble
    (`NnetEnsemble`, `opts.posterior_averaging`) gets priors as one network does (nnet-adjust-priors:
    the average of its averaged posteriors); its history is the first member's. With
    `opts.ensemble_training` (Kaldi's: betas > 0) the members are trained together instead and the
    result is member 1 (`train_network` with `co_trained`).
    """
    if opts.ensemble_training:
        return train_network(train_feats, train_targets, valid_feats, valid_targets, num_pdfs, opts,
                             co_trained=opts.ensemble_size, new_epoch=new_epoch)
    if opts.num_averaged_networks <= 1:
        return train_network(train_feats, train_targets, valid_feats, valid_targets, num_pdfs, opts, realign=realign,
                             new_epoch=new_epoch)
    n = opts.num_averaged_networks

    def member(k):
        return train_network(train_feats, train_targets, valid_feats, valid_targets, num_pdfs,
                             dataclasses.replace(opts, seed=opts.seed + k), with_priors=False, new_epoch=new_epoch)

    started = time.perf_counter()
    results = train_members(member, n, opts.parallel_jobs(), opts.seed, log_dir)
    if new_epoch is not None:  # (a member trained in this process left its last epoch's frames)
        new_epoch(opts.seed, 0)
    ensemble = NnetEnsemble([r.nnet for r in results], opts.posterior_averaging)
    if not isinstance(train_feats, SplicedFrames):
        train_feats = np.asarray(train_feats, np.float32)
    priors = estimate_priors(ensemble, train_feats, opts.prior_subset_size,
                             np.random.default_rng(opts.seed))
    if valid_targets is not None and len(valid_targets):
        members = ", ".join(f"{r.history[-1].get('valid_objf', float('nan')):.4f}" for r in results)
        valid = ensemble_objective(ensemble, valid_feats, valid_targets)
        log.info("%s: validation objf %.4f accuracy %.4f (members' last iterations: %s)", ensemble.describe(),
                 valid[0], valid[1], members)
    seconds = time.perf_counter() - started  # wall: the members' own times overlap when they train in parallel
    frames = sum(r.frames_per_second * r.seconds for r in results)
    return TrainingResult(ensemble, priors, results[0].history, seconds, frames / seconds)


def train_members(train_member, count, jobs, first_seed=0, log_dir=None):
    """[train_member(k) for k in range(count)] as `count` jobs of `kaldilite.parallel.run_jobs`, up to `jobs` at once.

    The jobs run in this process's local pool with the fork start method whatever --cmd or
    KALDILITE_CMD says: they read the examples this process holds (inherited at the fork, copy-on-write:
    no copy, no pickling, which is also why they cannot go to another machine), and each inherits
    the parent's BLAS thread setting (train-nnet2 sets one thread). `train_member` itself, a closure
    over those examples, is not pickled either: it waits in `_MEMBER_TRAINERS` and the job function
    finds it there by a token. Network k's log is `log_dir/train_network.k.log` (run_jobs' job log;
    a temporary directory when log_dir is None); its lines also reach the handlers of the
    `kaldilite.nnet` logger (train-nnet2's EXP/log/train.log) as they happen, prefixed by
    "[network k/n]" since two networks' lines interleave. A member that fails is run_jobs' one-line
    JobFailedError (its own message when it raised a KaldiliteError, else its log's last lines; a
    process that died: "worker process failed"). With `jobs` 1, or without fork (not POSIX), the
    members train one after the other in this process.
    """
    import multiprocessing
    import tempfile

    from kaldilite.parallel import LocalJobRunner, run_jobs

    fork = "fork" in multiprocessing.get_all_start_methods()
    nj = max(1, min(jobs, count)) if fork else 1
    log.info("training %d networks (seeds %d..%d), %d at a time", count, first_seed, first_seed + count - 1, nj)
    for handler in _all_handlers():  # nothing buffered may be written twice, once by each child
        handler.flush()
    token = f"{os.getpid()}.{id(train_member)}"
    _MEMBER_TRAINERS[token] = train_member
    started = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            if log_dir is None:
                log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="kaldilite-train-nnet2-"))
            outcomes = run_jobs(_train_member_job, [(token, k, count, first_seed) for k in range(count)], log_dir,
                                "train_network", nj=nj, runner=LocalJobRunner("fork" if fork else None),
                                resume=False)  # the fingerprint of (token, k) cannot see the examples
    finally:
        del _MEMBER_TRAINERS[token]
    log.info("%d networks trained in %.1f s wall (%s)", count, time.perf_counter() - started,
             ", ".join(f"network {k + 1}: {seconds:.1f} s CPU" for k, (_, seconds) in enumerate(outcomes)))
    return [result for result, _ in outcomes]


# train_members' closures, by token, for _train_member_job in this process or the workers it forks
_MEMBER_TRAINERS = {}


def _all_handlers():
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    return {handler for logger in loggers if isinstance(logger, logging.Logger) for handler in logger.handlers}


def _train_member_job(token, k, count, first_seed):
    """run_jobs' job k of train_members: (network k's result, its CPU seconds), its log lines marked."""
    factory = logging.getLogRecordFactory()
    prefix = f"[network {k + 1}/{count}] "

    def prefixed(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.msg = prefix + str(record.msg)
        return record

    logging.setLogRecordFactory(prefixed)
    cpu = time.process_time()
    try:
        log.info("seed %d, process %d", first_seed + k, os.getpid())
        return _MEMBER_TRAINERS[token](k), time.process_time() - cpu
    finally:
        logging.setLogRecordFactory(factory)


def ensemble_objective(ensemble, feats, targets, batch=4096):
    """(average log-probability of the targets, frame accuracy) under the averaged posteriors."""
    total = correct = 0.0
    for start in range(0, len(targets), batch):
        post = ensemble.posteriors(feats[start:start + batch])
        rows = targets[start:start + batch]
        total += float(np.log(np.maximum(post[np.arange(len(rows)), rows], 1e-30), dtype=np.float64).sum())
        correct += int((post.argmax(axis=1) == rows).sum())
    n = max(len(targets), 1)
    return total / n, correct / n


def _combine(kept, last, valid_feats, valid_targets, opts):
    if opts.combine == "optimize":
        from kaldilite.nnet.combine import combine_nnets, group_for_combination

        return combine_nnets(group_for_combination(kept, opts.max_models_combine), valid_feats, valid_targets)[0]
    average = average_nnets(kept)
    avg_objf, avg_acc = average.evaluate(valid_feats, valid_targets)
    last_objf, last_acc = last.evaluate(valid_feats, valid_targets)
    choice = average if avg_objf >= last_objf else last
    log.info("combination: average of the last %d models has validation objf %.4f (accuracy %.4f), the last model "
             "%.4f (%.4f); keeping the %s", len(kept), avg_objf, avg_acc, last_objf, last_acc,
             "average" if choice is average else "last model")
    return choice


def estimate_priors(nnet, feats, max_frames, rng, batch=8192):
    """Average posterior per pdf over (a random subset of at most `max_frames` of) `feats`.

    The subset is gathered one batch at a time, so `SplicedFrames` never materialize it whole.
    """
    if len(feats) > max_frames:
        rows = np.sort(rng.choice(len(feats), max_frames, replace=False))
    else:
        rows = np.arange(len(feats))
    total = np.zeros(nnet.num_pdfs, np.float64)
    for start in range(0, len(rows), batch):
        total += nnet.posteriors(feats[rows[start:start + batch]]).sum(axis=0, dtype=np.float64)
    return total / total.sum()


class SplicedFrames:
    """Examples kept as unspliced frames; each requested row is spliced and transformed when asked for.

    Kaldi keeps its egs compressed on disk; we keep the utterances' frames once (float32, T x D,
    with utterance `offsets`) and build a minibatch's input rows on demand: frame t with its
    neighbours t-`splice_width` .. t+`splice_width` side by side, the utterance's first / last
    frame repeated past its edges (exactly `splice_frames` on the whole utterance), then the
    affine `transform` (the preconditioning) applied as a float32 product, as Kaldi's nnet2 applies it
    (its first component, a FixedAffineComponent in BaseFloat): the float64 product this was before
    took ~6x the CPU, as much as half the first layer's own forward pass, for digits the float32
    network input drops anyway.
    A whole-corpus spliced copy (2 * splice_width + 1 times the frames) is never made.

    Indexing (`examples[rows]`, rows an int array or slice into this view's rows) returns the
    float32 input matrix; `rows` of the constructor select which frames this view holds (the
    training or the validation frames), sharing one `frames` array.
    """

    ndim = 2

    def __init__(self, frames, offsets, splice_width, rows=None, transform=None, ivectors=None, ivector_rows=None):
        self.frames = np.ascontiguousarray(frames, dtype=np.float32)
        # online i-vectors (train-nnet2 --online-ivector-dir): frame f's input gets ivectors[ivector_rows[f]]
        # appended after its spliced context (not spliced itself), before the transform
        self.ivectors = None if ivectors is None else np.ascontiguousarray(ivectors, dtype=np.float32)
        self.ivector_rows = None if ivector_rows is None else np.asarray(ivector_rows, dtype=np.int64)
        if (self.ivectors is None) != (self.ivector_rows is None) or (
                self.ivectors is not None and (self.ivectors.ndim != 2 or self.ivector_rows.shape != (len(self.frames),))):
            raise InputError("spliced examples: i-vectors need a row index for every frame")
        self.offsets = np.asarray(offsets, dtype=np.int64)
        if self.frames.ndim != 2 or self.offsets[0] != 0 or self.offsets[-1] != len(self.frames):
            raise InputError(f"spliced examples: offsets must run from 0 to the {len(self.frames)} frames")
        self.splice_width = int(splice_width)
        self.rows = np.arange(len(self.frames), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self._context = np.arange(-self.splice_width, self.splice_width + 1, dtype=np.int64)
        self.transform = None if transform is None else np.asarray(transform, dtype=np.float64)
        if self.transform is not None:
            dim = self.input_dim
            if self.transform.ndim != 2 or self.transform.shape[1] not in (dim, dim + 1):
                raise InputError(f"spliced examples: a {self.transform.shape} transform does not fit {dim}-dim "
                                 "spliced features")
            # transposed, float32 and contiguous once, not per minibatch
            self._linear_t = np.ascontiguousarray(self.transform[:, :dim].T, dtype=np.float32)
            self._offset = (self.transform[:, dim].astype(np.float32) if self.transform.shape[1] == dim + 1
                            else None)

    @property
    def spliced_dim(self):
        return self.frames.shape[1] * len(self._context)

    @property
    def input_dim(self):
        """Width of a row before the transform: the spliced frames, then the i-vector if any."""
        return self.spliced_dim + (0 if self.ivectors is None else self.ivectors.shape[1])

    @property
    def shape(self):
        return (len(self.rows), self.input_dim if self.transform is None else self.transform.shape[0])

    def __len__(self):
        return len(self.rows)

    def subset(self, mask):
        """The view of the rows where `mask` is true (same frames, same transform)."""
        return SplicedFrames(self.frames, self.offsets, self.splice_width, self.rows[mask], self.transform,
                             self.ivectors, self.ivector_rows)

    def with_transform(self, transform):
        return SplicedFrames(self.frames, self.offsets, self.splice_width, self.rows, transform, self.ivectors,
                             self.ivector_rows)

    def spliced(self, index):
        """The spliced rows (float32, before the transform) of this view's rows[index]."""
        frames = self.rows[index]
        utt = np.searchsorted(self.offsets, frames, side="right") - 1
        context = frames[:, None] + self._context
        np.clip(context, self.offsets[utt][:, None], (self.offsets[utt + 1] - 1)[:, None], out=context)
        return self.frames[context].reshape(len(frames), self.spliced_dim)

    def inputs(self, index):
        """The rows before the transform: spliced, with their frames' i-vectors appended if any."""
        return self._with_ivectors(self.spliced(index), index)

    def _with_ivectors(self, spliced, index):
        if self.ivectors is None:
            return spliced
        return np.hstack([spliced, self.ivectors[self.ivector_rows[self.rows[index]]]])

    def __getitem__(self, index):
        return self._transformed(self.inputs(index))

    def augmented(self, index, spec_augment, rng):
        """As `self[index]`, with `spec_augment`'s masks drawn from `rng` on the spliced rows before the
        transform (the i-vectors, not features of a time-frequency plane, are left alone)."""
        return self._transformed(self._with_ivectors(spec_augment.apply(self.spliced(index), rng), index))

    def _transformed(self, spliced):
        if self.transform is None:
            return spliced
        out = np.asarray(spliced, dtype=np.float32) @ self._linear_t
        if self._offset is not None:
            out += self._offset
        return out

    def materialize(self):
        """All rows at once (for the small validation set, evaluated every iteration)."""
        return self[slice(None)]


def accumulate_class_stats(examples: SplicedFrames, targets, num_classes, chunk=8192):
    """acc-lda statistics of the spliced (untransformed) examples, i-vectors appended if any (get_lda.sh's
    LDA covers the whole network input), a chunk of rows at a time."""
    from kaldilite.nnet.preconditioning import ClassStats

    stats = ClassStats(num_classes, examples.input_dim)
    for start in range(0, len(examples), chunk):
        stats.accumulate(examples.inputs(slice(start, start + chunk)), targets[start:start + chunk])
    return stats


# ---------------------------------------------------------------------------------- on files
def read_tid_alignments(ali_dir, num_transition_ids):
    """All ALI_DIR/ali.*.gz as dict utt -> transition-ids; ids above `num_transition_ids` are refused."""
    from pathlib import Path

    from kaldilite.errors import MissingFileError
    from kaldilite.io.tables import read_alignment_dir

    alignments = read_alignment_dir(ali_dir, num_transition_ids=num_transition_ids)
    if not alignments and not any(Path(ali_dir).glob("ali.*.gz")):
        raise MissingFileError(f"{Path(ali_dir) / 'ali.1.gz'}: no alignments; run kaldilite align first")
    return alignments


def read_pdf_alignments(ali_dir, tid_to_pdf):
    """All ALI_DIR/ali.*.gz as dict utt -> pdf ids (ali-to-pdf); transition-ids outside the model's are refused."""
    return {utt: tid_to_pdf[tids] for utt, tids in read_tid_alignments(ali_dir, len(tid_to_pdf) - 1).items()}


class OnlineCmvnEpochs:
    """train-nnet2 --online-cmvn: the training frames through online CMVN as decode-online carries it.

    Each speaker of DATA (an augmented copy is its own speaker in train_aug's utt2spk) starts from the
    global prior, and its utterances are normalized one after the other, each joining the stats its
    successors start from with the frames its alignment puts on silence phones weighted
    --online-cmvn-silence-weight: decode-online weighs the frames its best path puts there by
    --cmvn-silence-weight, through the same rule (`kaldilite.feat.cmvn.apply_cmvn_online`'s weights,
    `carry_speaker_stats`). An augmented copy's silence is its source's (`copied_alignment`); an
    utterance without any alignment (not trained on) still joins, every frame at weight 1. The order:
    --online-cmvn-order random draws each speaker's from (seed, epoch) (`speaker_orders`), so every
    epoch, and every averaged network, sees the speaker's clips in another order, as a live user says
    them in any; spk2utt keeps the data dir's (sorted ids: for Speech Commands, BY WORD).

    `features(seed, epoch)` yields (utt, normalized frames) in carry order; `renormalize(seed, epoch)`
    rewrites the rows of the examples' frames (`attach`) in place: `train_network`'s `new_epoch`. The
    raw frames stay in memory (one more copy of the unspliced features). Cost per epoch: one
    `apply_cmvn_online` pass, ~0.07 ms CPU per utterance (~0.55 s for 8400 clips), against minutes of
    training per epoch.
    """

    def __init__(self, data_dir, global_stats, cmvn_opts, silence, opts: Nnet2Options, copy_prefixes=()):
        from kaldilite.feat.cmvn import silence_weights
        from kaldilite.io.datadir import DataDir, utt2spk_to_spk2utt
        from kaldilite.io.tables import read_matrices

        data = DataDir.load(data_dir)
        if data.utt2spk is None:
            raise InputError(f"{data.path / 'utt2spk'}: missing; --online-cmvn carries stats within each speaker")
        self.global_stats, self.cmvn_opts, self.opts = global_stats, cmvn_opts, opts
        self.where = f"{data.path / 'feats.scp'}: online CMVN"
        self.raw = dict(read_matrices(data.path / "feats.scp"))
        spk2utt = data.spk2utt if data.spk2utt is not None else utt2spk_to_spk2utt(data.utt2spk)
        self.spk2utt = {spk: [u for u in utts if u in self.raw] for spk, utts in spk2utt.items()}
        utt2uniq = read_utt2uniq(data_dir)
        self.weights = {}
        unaligned = 0
        for utt in self.raw:
            is_silence = copied_alignment(utt, silence, utt2uniq, copy_prefixes)
            if is_silence is None or len(is_silence) != len(self.raw[utt]):
                unaligned += 1
                continue
            self.weights[utt] = silence_weights(is_silence, opts.online_cmvn_silence_weight)
        log.info("online CMVN carried through each speaker's utterances in %s order, silence frames (by the "
                 "alignments) weighted %g%s", opts.online_cmvn_order, opts.online_cmvn_silence_weight,
                 f"; {unaligned} utterances without an alignment of their length carried at weight 1"
                 if unaligned else "")
        self._rows = self._frames = None
        self._done = None

    def features(self, seed, epoch):
        from kaldilite.feat.cmvn import apply_cmvn_online, speaker_orders

        yield from apply_cmvn_online(self.raw, self.global_stats, self.cmvn_opts,
                                     speaker_orders(self.spk2utt, self._order_seed(seed, epoch)), where=self.where,
                                     weights=self.weights)

    def _order_seed(self, seed, epoch):
        return None if self.opts.online_cmvn_order == "spk2utt" else (seed, epoch)

    def attach(self, frames, utts, offsets, seed):
        """The examples' frames (utterance utts[i] in rows offsets[i]:offsets[i+1]), as `features(seed, 0)`
        normalized them: what `renormalize` rewrites."""
        self._frames = frames
        self._rows = {utt: (offsets[i], offsets[i + 1]) for i, utt in enumerate(utts)}
        self._done = self._order_seed(seed, 0)

    def renormalize(self, seed, epoch):
        key = self._order_seed(seed, epoch)
        if key == self._done:
            return  # these frames already
        started = time.process_time()
        for utt, feats in self.features(seed, epoch):
            rows = self._rows.get(utt)
            if rows is not None:
                self._frames[rows[0]:rows[1]] = feats
        self._done = key
        log.info("online CMVN: the training frames re-normalized for seed %d epoch %d (%s order) in %.2f s CPU",
                 seed, epoch, self.opts.online_cmvn_order, time.process_time() - started)


def parse_copy_ali_prefixes(spec):
    """train-nnet2 --copy-ali-prefixes 'noise-=sp1.0- rev1-' -> (('noise-', 'sp1.0-'), ('rev1-', ''))."""
    pairs = []
    for item in str(spec or "").replace(",", " ").split():
        copy, _, source = item.partition("=")
        if not copy or copy == source:
            raise InputError(f"--copy-ali-prefixes {spec!r}: {item!r} must be COPY=SOURCE (or COPY) "
                             "with a non-empty COPY prefix other than SOURCE, e.g. 'noise-=sp1.0-'")
        pairs.append((copy, source))
    return tuple(pairs)


def copy_ali_source(utt, copy_prefixes):
    """The utterance whose alignment `utt` takes under `copy_prefixes` (copied_alignment), or None."""
    for copy, source in copy_prefixes:
        if utt.startswith(copy):
            return source + utt[len(copy):]
    return None


def copied_alignment(utt, pdf_alignments, utt2uniq, copy_prefixes=()):
    """The alignment of `utt`, or of the utterance it is an augmented copy of.

    An additive-noise copy (`noise-sp0.9-george-0-00`, add-noise-data-dir) has the frames of
    its source, so it takes the source's alignment, as Kaldi's recipes copy clean alignments
    to reverberated/noisy data (steps/copy_ali_dir.sh --prefixes) instead of aligning noisy
    audio. The source is found by stripping leading `<prefix>-` parts of the id; it must have
    the same DATA/utt2uniq entry, so an id that merely looks prefixed is never matched.

    `copy_prefixes` ((COPY, SOURCE) id prefixes, train-nnet2 --copy-ali-prefixes) come first and
    override the copy's own alignment: the recipes' GMMs align train_aug's noise copies
    (`noise-<utt>`) as they train on them, but the DNN's targets for a noise copy are its clean
    copy's (`sp1.0-<utt>`), whose timing it keeps. None when SOURCE has no alignment; an error
    when the two have different DATA/utt2uniq entries (the prefixes pair the wrong utterances).
    """
    source = copy_ali_source(utt, copy_prefixes)
    if source is not None:
        pdfs = pdf_alignments.get(source)
        if pdfs is not None and utt in utt2uniq and utt2uniq.get(source, source) != utt2uniq[utt]:
            raise InputError(f"utt2uniq: --copy-ali-prefixes gives {utt} the alignment of {source}, but they are "
                             f"copies of different recordings ({utt2uniq[utt]} vs {utt2uniq.get(source, source)}); "
                             "fix the prefixes")
        return pdfs
    pdfs = pdf_alignments.get(utt)
    if pdfs is not None or utt not in utt2uniq:
        return pdfs
    source = utt
    while "-" in source:
        source = source.split("-", 1)[1]
        if source in pdf_alignments:
            return pdf_alignments[source] if utt2uniq.get(source, source) == utt2uniq[utt] else None
    return None


def padded_alignments(data_dir, lang_dir, tm, tid_alignments):
    """{utt: transition-ids} for DATA's padded utterances (DATA/utt2pad: "<utt> <before> <after>" seconds,
    add-noise-data-dir --pad-range; frames of DATA/frame_shift, the features' shift that make-mfcc records,
    Kaldi's 0.01 s without it; a pause that is not whole frames of it is an error naming the line and
    add-noise-data-dir --frame-shift): the alignment of the copy without the pauses (`_unpadded_source`: the
    id with its leading `<prefix>-` parts stripped; that copy need not be in DATA),
    with the pauses' frames put on the optional-silence phone (LANG/phones/optional_silence.int).

    Extended rather than re-aligned: under the word the padded audio is sample for sample the unpadded
    copy (add_noise_data_dir), whose alignment is tri3b's, and the pauses are noise only, which is silence
    by construction; a forced alignment of the longer clip could only lose that (a noisy pause is free to
    absorb word phones). Every pause frame is the optional silence's self-loop transition-id that
    `tid_alignments` hold most: the state a long silence stays in (the slice's tri3b, aligning padded
    clips itself, put 94% of their pause frames on SIL state 0, the commonest; pauses split in equal shares
    over SIL's 5 states instead trained a pair 3 points worse on the slice, conf/nnet2.conf). A padded
    utterance the alignments hold itself (a GMM aligned the padded clips) keeps that alignment, which
    already covers its pauses; one without a source alignment is left out (as any unaligned one).
    """
    from pathlib import Path

    from kaldilite.io.config import convert_string_to_real, split_fields
    from kaldilite.io.datadir import FRAME_SHIFT_FILE, read_entries, read_frame_shift, read_key_values
    from kaldilite.lang.langdir import read_phone_list

    path = Path(data_dir) / "utt2pad"
    if not path.exists():
        return {}
    shift = read_frame_shift(data_dir)
    shift_source = Path(data_dir) / FRAME_SHIFT_FILE
    shift_source = shift_source if shift_source.exists() else f"Kaldi's default: no {shift_source}"
    phones = read_phone_list(Path(lang_dir) / "phones" / "optional_silence.int",
                             "utt2pad's pauses are aligned to the optional silence; give a lang dir made by prepare-lang")
    counts = np.bincount(np.concatenate(list(tid_alignments.values())), minlength=len(tm.tid_to_pdf)) \
        if tid_alignments else np.zeros(len(tm.tid_to_pdf), np.int64)
    candidates = np.flatnonzero((tm.tid_to_phone == phones[0]) & tm.tid_is_self_loop)
    if not len(candidates):
        raise InputError(f"{Path(lang_dir) / 'phones' / 'optional_silence.int'}: phone {phones[0]} has no self-loop "
                         f"in {tm!r}; the lang dir is not the model's")
    pause_tid = int(candidates[np.argmax(counts[candidates])])

    def pause(frames):
        return np.full(frames, pause_tid, np.int32)

    utt2uniq = read_utt2uniq(data_dir)
    read_key_values(path)  # a duplicate id: one-line error naming both lines
    entries = read_entries(path)
    padded, own = {}, 0
    for entry in entries:
        utt, value = entry.key, entry.value
        fields = split_fields(value)
        try:
            if len(fields) != 2:
                raise ValueError
            # Kaldi's rule for a number (ConvertStringToReal), finite: float() also took '1_0' and '٣'
            frames = [convert_string_to_real(x) / shift for x in fields]
            before, after = (int(round(x)) for x in frames)
            if before < 0 or after < 0:
                raise ValueError
        except (ValueError, OverflowError):  # (ValueError: nan; OverflowError: inf)
            raise InputError(f"{path}:{entry.line}: '{utt} {value}' must be '<utt> <before> <after>' (seconds >= 0); "
                             "fix the line or remake the dir with add-noise-data-dir --pad-range") from None
        if max(abs(x - round(x)) for x in frames) > 1e-3:
            raise InputError(f"{path}:{entry.line}: '{utt} {value}': the pauses are not whole frames of "
                             f"{shift:g} s ({shift_source}); remake the dir with add-noise-data-dir "
                             f"--frame-shift {shift * 1000:g} (the features' shift, ms)")
        if utt in tid_alignments:  # the padded clip's own alignment, pauses included
            padded[utt] = tid_alignments[utt]
            own += 1
            continue
        source = _unpadded_source(utt, tid_alignments, utt2uniq)
        if source is not None:
            tids = tid_alignments[source]
            padded[utt] = np.concatenate([pause(before), tids, pause(after)]).astype(tids.dtype)
    log.info("%s: %d of %d padded utterances take their unpadded copy's alignment, the pauses on silence phone %d"
             "%s", path, len(padded) - own, len(entries), phones[0],
             f" ({own} keep their own alignment)" if own else "")
    return padded


def _unpadded_source(utt, alignments, utt2uniq):
    """The id of the aligned copy `utt` was padded from: `utt` with leading `<prefix>-` parts stripped
    (pad-noise-X -> noise-X); a DATA/utt2uniq entry the source has must be utt's. None if none."""
    source = utt
    while True:
        if "-" not in source:
            return None
        source = source.split("-", 1)[1]
        if source in alignments:
            break
    if source in utt2uniq and utt in utt2uniq and utt2uniq[source] != utt2uniq[utt]:
        return None
    return source


def load_examples(data_dir, pipeline, pdf_alignments, features=None, copy_prefixes=()):
    """(utterances, features, targets, offsets) for the utterances with features and alignment.

    Augmented copies without an alignment of their own use their source's (`copied_alignment`),
    as do the utterances `copy_prefixes` name (an error if such a copy's length is not its source's).
    `features` (iterable of (utt, matrix)) replaces the data dir's features through `pipeline`.
    """
    utt2uniq = read_utt2uniq(data_dir)
    utts, feats, targets = [], [], []
    mismatched = copied = 0
    unsourced = []
    for utt, mat in features if features is not None else _pipeline_features(data_dir, pipeline):
        pdfs = copied_alignment(utt, pdf_alignments, utt2uniq, copy_prefixes)
        source = copy_ali_source(utt, copy_prefixes)
        if pdfs is None:
            if source is not None:
                unsourced.append((utt, source))
            continue
        copied += source is not None or utt not in pdf_alignments
        if source is not None and len(pdfs) != len(mat):
            raise InputError(f"{data_dir}: utterance {utt} has {len(mat)} frames but {source}, whose alignment "
                             f"--copy-ali-prefixes gives it, has {len(pdfs)}; a copy must keep its source's timing "
                             "(no speed change): fix the prefixes")
        if len(pdfs) != len(mat):
            mismatched += 1
            continue
        utts.append(utt)
        feats.append(mat)
        targets.append(pdfs)
    if mismatched:
        log.warning("%d utterances skipped: alignment length differs from the number of feature frames "
                    "(alignments made from other features?)", mismatched)
    if copied:
        log.info("%d augmented utterances use the alignment of the utterance they were made from", copied)
    if unsourced:
        log.warning("%d utterances skipped: --copy-ali-prefixes names a source the alignments lack (e.g. %s for %s)",
                    len(unsourced), unsourced[0][1], unsourced[0][0])
    if not utts:
        raise InputError(f"{data_dir}: no utterance has both features and an alignment")
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in targets])])
    return utts, np.concatenate(feats), np.concatenate(targets).astype(np.int64), offsets


def validation_subset(data_dir, utts, num_utts, rng):
    """Boolean mask of `num_utts` held-out utterances (get_egs.sh's --num-utts-subset).

    With DATA/utt2uniq (speed-perturbed or noisy copies) whole groups of copies of one source
    utterance are held out together, so no copy of a validation utterance is trained on.
    """
    mask = np.zeros(len(utts), bool)
    if num_utts <= 0 or len(utts) <= 2 * num_utts:
        return mask
    uniq = read_utt2uniq(data_dir)
    groups = np.array([uniq.get(u, u) for u in utts])
    names = np.unique(groups)
    copies = len(utts) / len(names)
    chosen = rng.choice(len(names), max(1, int(round(num_utts / copies))), replace=False)
    return np.isin(groups, names[chosen])


def read_utt2uniq(data_dir):
    """DATA/utt2uniq (augmented copy -> source recording), or {} without that file."""
    from pathlib import Path

    from kaldilite.io.datadir import read_key_values

    uniq_path = Path(data_dir) / "utt2uniq"
    return read_key_values(uniq_path) if uniq_path.exists() else {}


def _pipeline_features(data_dir, pipeline):
    from kaldilite.feat.pipeline import load_features

    return load_features(data_dir, pipeline)


def _training_ivectors(online_ivector_dir, data_dir, utts, offsets):
    """(IvectorInput or None, SplicedFrames' i-vector arguments) of --online-ivector-dir for the
    training utterances: every one covered, each frame's row t // period (get_egs2.sh's rule)."""
    if not online_ivector_dir:
        return None, {}
    from kaldilite.ivector.ivector_dir import OnlineIvectorDir
    from kaldilite.nnet.model import IvectorInput

    ivectors = OnlineIvectorDir(online_ivector_dir)
    extractor_id = ivectors.known_extractor_id("re-run kaldilite extract-ivectors-online (it writes final.ie.id)")
    ivectors.check_covers(utts, data_dir)
    rows, row_of_frame = ivectors.stacked(utts, np.diff(offsets))
    info = IvectorInput(ivectors.dim, ivectors.period, extractor_id, _recorded_extractor(ivectors))
    log.info("online i-vectors from %s: %s, %d rows, extractor final.ie.id %s", ivectors.path, info.describe(),
             len(rows), info.extractor_id)
    return info, {"ivectors": rows, "ivector_rows": row_of_frame}


def _recorded_extractor(ivectors):
    """The extractor file the model records (export-model's default --ivector-extractor): the one the i-vector
    dir names, if it is still there and still the extractor of final.ie.id; else "" (export then asks)."""
    from kaldilite.ivector.ivector_dir import EXTRACTOR_CONF_FILE, extractor_id

    path = ivectors.extractor_path
    if path is None:
        return ""
    if not path.is_file() or extractor_id(path) != ivectors.extractor_id:
        log.warning("%s names the extractor %s, which %s; the model does not record it, so export-model will need "
                    "--ivector-extractor", ivectors.path / EXTRACTOR_CONF_FILE, path,
                    "is gone" if not path.is_file() else "has changed since (its md5 is not final.ie.id's)")
        return ""
    return str(path)


def train_nnet2(data_dir, lang_dir, ali_dir, exp_dir, opts: Nnet2Options | None = None, realigner=None):
    """DATA LANG ALI_DIR EXP -> EXP/final.mdl (see the module docstring). Returns a summary dict.
    `realigner` (tm, tree, (utt, loglikes) iterable) -> {utt: pdfs}: the aligner of --realign-epochs
    (kaldilite.train.nnet_realign.TrainingGraphRealigner)."""
    import shutil
    from pathlib import Path

    from kaldilite.errors import MissingFileError
    from kaldilite.feat.pipeline import raw_feature_dim_of, recorded_feature_type
    from kaldilite.gmm.model import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.nnet.model import NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.preconditioning import estimate_preconditioning

    opts = opts or Nnet2Options()
    start = time.perf_counter()
    ali, exp = Path(ali_dir), Path(exp_dir)
    for name in ("final.mdl", "tree"):
        if not (ali / name).is_file():
            raise MissingFileError(f"{ali / name}: missing; <ali-dir> must be a GMM system's dir or its "
                                   "align output (final.mdl, tree, ali.*.gz)")
    exp.mkdir(parents=True, exist_ok=True)
    tm, _, gmm_pipeline, _ = load_model(ali / "final.mdl")
    tree = ContextDependency.read(ali / "tree")
    num_pdfs = tree.num_pdfs
    if num_pdfs != tm.num_pdfs:
        raise InputError(f"{ali / 'tree'} has {num_pdfs} pdfs but {ali / 'final.mdl'} {tm.num_pdfs}; "
                         "the alignment dir mixes two systems (re-run the alignment)")
    log.info("alignments from %s: %d pdfs (tree %s)", ali, num_pdfs, ali / "tree")
    cmvn = gmm_pipeline.cmvn if gmm_pipeline is not None else "speaker"
    norm_vars = gmm_pipeline.norm_vars if gmm_pipeline is not None else False
    if opts.norm_vars is not None:
        norm_vars = opts.norm_vars
    from kaldilite.feat.pipeline import FeaturePipeline

    raw_dim = raw_feature_dim_of(data_dir)
    feature_type = recorded_feature_type(data_dir, opts.feature_type)
    if feature_type != opts.feature_type:  # (the SpecAugment / VTLP domain reads it: fbank or cepstra)
        opts = dataclasses.replace(opts, feature_type=feature_type)
    tid_alis = read_tid_alignments(ali, len(tm.tid_to_pdf) - 1)
    tid_alis.update(padded_alignments(data_dir, lang_dir, tm, tid_alis))
    pdf_alis = {utt: tm.tid_to_pdf[tids] for utt, tids in tid_alis.items()}
    fmllr_pipeline = features = online_epochs = None
    online = {}
    if opts.online_cmvn:
        from kaldilite.feat.pipeline import global_cmvn_stats
        from kaldilite.hmm.transition_model import silence_tid_mask
        from kaldilite.lang.langdir import read_phone_list

        if opts.transform_dir:
            raise InputError("--online-cmvn is for speaker-independent input (online decoding); "
                             "--transform-dir input is normalized by the SAT system's offline CMVN")
        cmvn = "online"
        online = {"online_cmvn_stats": global_cmvn_stats(data_dir), "online_cmvn_options": {}}
        log.info("online CMVN: prior = %s/cmvn.scp summed (%d frames)", data_dir, online["online_cmvn_stats"][0, -1])
        silence_phones = read_phone_list(Path(lang_dir) / "phones" / "silence.int",
                                         "--online-cmvn weighs the alignments' silence frames; give a lang dir "
                                         "made by prepare-lang")
        is_silence_tid = silence_tid_mask(tm.tid_to_phone, silence_phones)
        online_epochs = OnlineCmvnEpochs(
            data_dir, online["online_cmvn_stats"],
            FeaturePipeline(cmvn=cmvn, norm_vars=norm_vars, **online).online_cmvn_opts(),
            {utt: is_silence_tid[tids] for utt, tids in tid_alis.items()}, opts, opts.copy_ali_prefix_pairs())
        features = online_epochs.features(opts.seed, 0)
    del tid_alis
    if opts.transform_dir and opts.spec_augment_enabled:
        raise InputError("SpecAugment masks mel bins of cepstra or filterbanks; --transform-dir input "
                         "is fMLLR-adapted LDA features (set --spec-augment-freq-max-proportion and "
                         "--spec-augment-time-zeroed-proportion to 0, e.g. in the fMLLR DNN's config)")
    if opts.spec_augment_enabled and cmvn == "none":
        log.warning("SpecAugment masks to 0, which is the mean only after CMVN; these features have none, so "
                    "masked bins look like %s energy 0 instead of an average frame", opts.feature_type)
    if opts.transform_dir:
        from kaldilite.nnet.model import read_transform_dir, speaker_adapted_features

        if gmm_pipeline is None:
            raise InputError(f"{ali / 'final.mdl'}: the model does not record its feature pipeline, so fMLLR "
                             "transforms cannot be applied to its features; retrain it with this kaldilite")
        if opts.norm_vars is not None and opts.norm_vars != gmm_pipeline.norm_vars:
            raise InputError(f"--norm-vars {opts.norm_vars} conflicts with --transform-dir: the fMLLR "
                             f"transforms follow {ali / 'final.mdl'}'s CMVN (norm-vars {gmm_pipeline.norm_vars})")
        fmllr_pipeline = gmm_pipeline
        transforms = read_transform_dir(opts.transform_dir, gmm_pipeline.transform)
        log.info("using the fMLLR transforms of %s (%d speakers) on %s's features", opts.transform_dir,
                 len(transforms), ali / "final.mdl")
        spliced = FeaturePipeline(cmvn="none", splice_left=opts.splice_width, splice_right=opts.splice_width)
        # float32 as FeaturePipeline.apply returns its output, so splicing later gives the same rows
        features = ((utt, np.asarray(mat, dtype=np.float32)) for utt, mat in
                    speaker_adapted_features(data_dir, gmm_pipeline, transforms, transform_dir=opts.transform_dir))
        unspliced = None
    else:
        spliced = FeaturePipeline(cmvn=cmvn, norm_vars=norm_vars, splice_left=opts.splice_width,
                                  splice_right=opts.splice_width, **online)
        unspliced = FeaturePipeline(cmvn=cmvn, norm_vars=norm_vars, **online)
    if opts.online_ivector_dir and opts.transform_dir:
        raise InputError("--online-ivector-dir with --transform-dir is not implemented: the i-vector input is for "
                         "the speaker-independent (online) network")
    # unspliced frames only: each minibatch is spliced and preconditioned on the fly (SplicedFrames)
    utts, feats, targets, offsets = load_examples(data_dir, unspliced, pdf_alis, features,
                                                  opts.copy_ali_prefix_pairs())
    ivector_input, ivector_rows = _training_ivectors(opts.online_ivector_dir, data_dir, utts, offsets)
    examples = SplicedFrames(feats, offsets, opts.splice_width, **ivector_rows)
    del feats
    if online_epochs is not None:
        online_epochs.attach(examples.frames, utts, offsets, opts.seed)
    log.info("%d utterances, %d frames of %d-dim %s + %s CMVN%s spliced -%d/+%d = %d", len(utts), len(targets),
             raw_dim, opts.feature_type, cmvn, "" if fmllr_pipeline is None else ", final.mat, fMLLR,",
             opts.splice_width, opts.splice_width, examples.spliced_dim)
    rng = np.random.default_rng(opts.seed)
    valid_utts = validation_subset(data_dir, utts, opts.num_utts_subset, rng)
    frame_is_valid = np.repeat(valid_utts, np.diff(offsets))
    train_examples = examples.subset(~frame_is_valid)
    train_targets = targets[~frame_is_valid]
    stats = accumulate_class_stats(train_examples, train_targets, num_pdfs)
    transform = estimate_preconditioning(stats, opts.lda_dim, within_class_factor=opts.within_class_factor)
    # with i-vectors the transform maps [spliced, i-vector]: the model's input_transform, not the pipeline's
    pipeline = spliced.with_transform(transform) if ivector_input is None else spliced
    # the validation set (at most --num-utts-subset utterances) is evaluated every iteration: made once
    valid_inputs = examples.subset(frame_is_valid).with_transform(transform).materialize()
    if opts.realign_epoch_list():
        if realigner is None:
            raise InputError("--realign-epochs needs an aligner (the train-nnet2 verb gives one)")
        from kaldilite.nnet.realign import realigned_targets

        current = {"targets": targets}  # each realignment starts from (and falls back to) the previous one's

        def realign(nnet):
            priors = estimate_priors(nnet, train_examples.with_transform(transform), opts.prior_subset_size,
                                     np.random.default_rng([opts.seed, 2]))
            new, _ = realigned_targets(nnet, examples.with_transform(transform), utts, offsets, current["targets"],
                                       priors, opts.prior_scale, realigner, tm, tree)
            current["targets"] = new
            return new[~frame_is_valid], new[frame_is_valid]
    else:
        realign = None
    result = train_ensemble(train_examples.with_transform(transform), train_targets, valid_inputs,
                            targets[frame_is_valid], num_pdfs, opts, realign=realign,
                            new_epoch=None if online_epochs is None else online_epochs.renormalize, log_dir=exp / "log")
    extra = {"type": "nnet2", "ali_dir": str(ali), "options": dataclasses.asdict(opts),
             "training_seconds": round(result.seconds, 2)}
    ivector_model = {} if ivector_input is None else {"ivector": ivector_input, "input_transform": transform}
    model = NnetAcousticModel(tm, result.nnet, result.priors, pipeline, raw_dim, opts.feature_type, extra,
                              source=f"model {exp / 'final.mdl'}", fmllr_pipeline=fmllr_pipeline,
                              prior_scale=opts.prior_scale, **ivector_model)
    save_nnet_model(exp / "final.mdl", model)
    # ensemble training: every member as Kaldi leaves them (final.1.mdl .. final.N.mdl; final.mdl = final.1.mdl)
    if result.members:
        shutil.copyfile(exp / "final.mdl", exp / "final.1.mdl")
    for k, (member, member_priors) in enumerate(result.members[1:], start=2):
        save_nnet_model(exp / f"final.{k}.mdl", NnetAcousticModel(
            tm, member, member_priors, pipeline, raw_dim, opts.feature_type, extra,
            source=f"model {exp / f'final.{k}.mdl'}", fmllr_pipeline=fmllr_pipeline, prior_scale=opts.prior_scale,
            **ivector_model))
    shutil.copyfile(ali / "tree", exp / "tree")
    for name in ("phones.txt",):
        if (ali / name).is_file():
            shutil.copyfile(ali / name, exp / name)
        elif (Path(lang_dir) / name).is_file():
            shutil.copyfile(Path(lang_dir) / name, exp / name)
    seconds = time.perf_counter() - start
    last = result.history[-1]
    log.info("train-nnet2: %s -> %s in %.1f s (network training %.1f s, %.0f frames/s)", ali, exp / "final.mdl",
             seconds, result.seconds, result.frames_per_second)
    return {"final_model": str(exp / "final.mdl"), "seconds": seconds, "train_seconds": result.seconds,
            "frames_per_second": result.frames_per_second, "history": result.history, "final": last,
            "input": model.describe_input()}
