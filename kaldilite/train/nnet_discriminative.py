"""Sequence-discriminative training of an nnet2 DNN (MMI, sMBR), as Kaldi's steps/nnet2/train_discriminative2.sh.

Follows Kaldi's nnet2 pipeline (steps/nnet2/make_denlats.sh, get_egs_discriminative2.sh,
train_discriminative2.sh; src/nnet2/nnet-compute-discriminative.cc), starting from a trained
cross-entropy model, its numerator alignments (the GMM alignments it was trained on: ALI_DIR; a
padded copy's, DATA/utt2pad, extended over its pauses as train-nnet2 extends them: `padded_alignments`)
and denominator lattices made with that DNN (`kaldilite make-denlats --model`; for command
recognition through the commands grammar with fillers and the garbage phone loop, so the
training widens the margin of the right command over competing commands and over garbage:
what the rejection score llr_total measures). Per minibatch of whole utterances:

- the network's log pdf posteriors (`kaldilite.nnet.discriminative`), minus prior_scale x log prior
  (the model's own pseudo log-likelihoods, as decoding sees them);
- each lattice rescored with them and forward-backward at --acwt (`kaldilite.decode.denlat`),
  graph costs boosted against the numerator alignment first with --boost (boosted MMI);
- the derivative with respect to the log posteriors: numerator (one-hot alignment) minus
  denominator pdf posteriors, as Kaldi's (the derivative of the objective divided by acwt; the
  prior term is constant in the parameters and enters only through the denominator posteriors);
  --drop-frames (Kaldi's MMI option): frames whose numerator pdf has no denominator posterior
  (the lattice lost the reference there) pass no gradient; with --criterion smbr the derivative
  is instead the lattice's signed posteriors of the expected frame accuracy against the
  alignment (`kaldilite.decode.denlat.forward_backward_smbr`, --one-silence-class), the
  objective the expected accuracy per frame;
- back-propagation and the update of `kaldilite.nnet.train` (momentum SGD, or `update="rms"`,
  the RMS-normalized stand-in for nnet2's natural gradient the cross-entropy recipe uses),
  with max-change per component. Learning rate constant, `num_epochs` passes over the data.

The MMI objective per frame (acwt x numerator log-likelihood - log total of the denominator
lattice, Kaldi's "MMI objective function is num - den per frame") is logged for the training
minibatches and for `num_utts_subset` held-out utterances (not trained on) before training and
after every epoch. Priors and the feature pipeline are the input model's (train_discriminative2.sh's
--adjust-priors false), so EXP/final.mdl is an nnet2 model file that decode-commands, the online
decoder and export-model read unchanged. MPFE is not implemented.

Not in the commands recipe: on 20 held-out training speakers (the clean slice of
bench/rejection_slice.py: in-domain protocol, logistic(llr_total, gop_mean), paired against the
cross-entropy start of the same seed, the recipe's SpecAugment DNN; denominator = the commands
grammar with fillers and the garbage loop, beam 13 / lattice beam 7, 69 links per frame) every
setting was neutral at best and more training hurt monotonically, while the training speakers'
held-out MMI objective and frame accuracy kept rising: seed 0 80.1% command accuracy at 5% FA ->
MMI SGD lr 2e-5 x 4 epochs 66.0 (4 fixed / 52 broken; commands-only 92.4 -> 89.7), lr 2e-6 after
1, 2, 4 epochs 79.5 (5/7), 76.8 (4/15), 76.8 (5/16); sMBR lr 2e-5 x 1 epoch 70.4, lr 2e-6 x 1, 2
epochs 78.9 (8/12), 76.0 (9/23); lr 2e-6 x 1 with SpecAugment masks 0.3 78.9 (3/7), with
--boost 0.1 --drop-frames true 78.3 (3/9); with a commands + fillers denominator without the
garbage loop 77.1 (2/12); seed 1, lr 2e-6 x 1 epoch: 79.5 -> 79.2 (5/6); the EER of the threshold
rose on both seeds. Cost of one pass: make-denlats with the DNN ~100 s CPU for 7012 utterances
(2.1 GB of lattices when stored as int64 / float64; half that now, at 32 bits), one epoch ~30 s CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class NnetDiscriminativeOptions:
    """train_discriminative2.sh's options where they apply (criterion, acoustic scale, boost, drop-frames)."""

    criterion: str = "mmi"  # or "smbr"
    one_silence_class: bool = True  # sMBR: any silence frame decoded as any silence pdf counts as right
    num_epochs: int = 4
    learning_rate: float = 2e-5
    update: str = "sgd"  # "sgd" (nnet2's) or "rms" (kaldilite.nnet.updates.rms_update)
    momentum: float = 0.0
    rms_decay: float = 0.999
    max_change: float = 2.0
    acwt: float = 0.1
    boost: float = 0.0
    drop_frames: bool = False
    frames_per_minibatch: int = 512  # whole utterances are gathered until a minibatch holds this many frames
    xent_regularize: float = 0.0  # > 0: plus this times the cross-entropy objective of the alignment (nnet3's)
    # > 0: SpecAugment frequency masks on the training minibatches (train-nnet2's option of that name)
    spec_augment_freq_max_proportion: float = 0.0
    num_utts_subset: int = 100
    seed: int = 0
    # train-nnet2's option of that name; None: as SRC_MODEL was trained (its recorded options)
    copy_ali_prefixes: str | None = None

    def __post_init__(self):
        if self.criterion not in ("mmi", "smbr"):
            raise InputError(f"train-nnet2-discriminative: --criterion must be mmi or smbr, got {self.criterion!r} "
                             "(Kaldi's mpfe is not implemented)")
        if self.update not in ("sgd", "rms"):
            raise InputError(f"train-nnet2-discriminative: --update must be sgd or rms, got {self.update!r}")
        if self.num_epochs < 1 or self.learning_rate <= 0 or self.acwt <= 0:
            raise InputError("train-nnet2-discriminative: --num-epochs, --learning-rate and --acwt must be positive")
        from kaldilite.nnet.spec_augment import SpecAugment

        # SpecAugment's own checks, before the lattices are loaded (not after; and a negative proportion is not "off")
        SpecAugment(1, 1, freq_max_proportion=self.spec_augment_freq_max_proportion)
        if self.copy_ali_prefixes is not None:
            from kaldilite.nnet.train import parse_copy_ali_prefixes

            parse_copy_ali_prefixes(self.copy_ali_prefixes)  # a malformed one fails before any work


def mmi_derivative(lat, log_likes, tid_to_pdf, num_pdfs, num_pdf_ali, acwt, graph_costs=None, drop_frames=False,
                   derivative=True):
    """One utterance's MMI statistics: (numerator term, denominator log total, frames x pdfs derivative
    of the objective / acwt with respect to the log-likelihoods, number of frames dropped).

    `log_likes` (frames x pdfs) are the model's pseudo log-likelihoods; the numerator term is acwt x
    their sum along `num_pdf_ali`; the derivative is one-hot numerator minus denominator posteriors.
    A lattice with no complete path gives a None derivative and an infinite log total; so does
    `derivative=False` (validation: the objective only, no frames x pdfs array) with a finite one.
    """
    from kaldilite.decode.denlat import forward_backward, frame_pdf_posteriors

    link_post, den_total = forward_backward(lat, log_likes, tid_to_pdf, acwt, graph_costs)
    if not np.isfinite(den_total):
        return 0.0, den_total, None, 0
    frames = np.arange(lat.num_frames)
    num_term = acwt * float(np.asarray(log_likes, np.float64)[frames, num_pdf_ali].sum())
    if not derivative:
        return num_term, float(den_total), None, 0
    den_frames, den_pdfs, den_post = frame_pdf_posteriors(lat, link_post, tid_to_pdf, num_pdfs)
    deriv = np.zeros((lat.num_frames, num_pdfs))
    deriv[den_frames, den_pdfs] = -den_post
    dropped = 0
    if drop_frames:
        lost = deriv[frames, num_pdf_ali] == 0.0
        dropped = int(lost.sum())
        deriv[lost] = 0.0
        deriv[frames[~lost], num_pdf_ali[~lost]] += 1.0
    else:
        deriv[frames, num_pdf_ali] += 1.0
    return num_term, float(den_total), deriv, dropped


def smbr_derivative(lat, log_likes, tm, num_pdfs, ali, acwt, silence_phones, one_silence_class=True, derivative=True):
    """One utterance's sMBR statistics: (expected frame accuracy, log total, frames x pdfs derivative of the
    expected accuracy / acwt with respect to the log-likelihoods); a None derivative without a complete path
    (infinite log total) or with `derivative=False` (validation: the objective only)."""
    from kaldilite.decode.denlat import forward_backward_smbr

    signed, expected, total = forward_backward_smbr(lat, log_likes, tm.tid_to_pdf, tm.tid_to_phone, ali,
                                                    silence_phones, acwt, one_silence_class)
    if not np.isfinite(total) or not derivative:
        return (float(expected) if np.isfinite(total) else 0.0), float(total), None
    deriv = np.zeros((lat.num_frames, num_pdfs))
    emitting = lat.tid > 0
    np.add.at(deriv, (lat.frame[emitting], tm.tid_to_pdf[lat.tid[emitting]]), signed[emitting])
    return float(expected), float(total), deriv


class _Utterances:
    """Training material in memory: CMVN'd unspliced frames (spliced per minibatch), tid alignments, lattices."""

    def __init__(self, model, data_dir, lang_dir, ali_dir, denlat_dir, copy_ali_prefixes=None):
        from kaldilite.decode.denlat import load_den_lattices
        from kaldilite.feat.pipeline import load_features
        from kaldilite.io.tables import read_alignment_dir
        from kaldilite.nnet.train import SplicedFrames, load_examples, padded_alignments, parse_copy_ali_prefixes

        pipeline = model.pipeline
        if model.speaker_adapted:
            raise InputError(f"{model.source}: reads fMLLR-adapted input; train-nnet2-discriminative takes "
                             "speaker-independent DNNs (the online model)")
        if pipeline.splice_left != pipeline.splice_right or pipeline.delta_order:
            raise InputError(f"{model.source}: splicing -{pipeline.splice_left}/+{pipeline.splice_right} with deltas "
                             f"order {pipeline.delta_order}: only train-nnet2's symmetric splicing is supported")
        model.check_raw_features(data_dir)
        tid_alis = read_alignment_dir(ali_dir, num_transition_ids=model.tm.num_transition_ids)
        if not tid_alis:
            raise MissingFileError(f"{Path(ali_dir) / 'ali.1.gz'}: no alignments; run align-fmllr / align first")
        # a padded copy's numerator (DATA/utt2pad): its unpadded copy's alignment with the pauses on silence,
        # train-nnet2's target for it (the same function, on the same alignments: the same pause transition-id)
        tid_alis.update(padded_alignments(data_dir, lang_dir, model.tm, tid_alis))
        lattices = {}
        for path in sorted(Path(denlat_dir).glob("denlat.*.npz")):
            lattices.update(load_den_lattices(path))
        if not lattices:
            raise MissingFileError(f"{denlat_dir}: no denlat.*.npz; run `kaldilite make-denlats --model` first")
        # the numerator is the cross-entropy training's target: the same copies take their source's alignment
        # (train-nnet2 --copy-ali-prefixes, recorded in the model), as Kaldi's recipes give both stages one
        # ali dir made by steps/copy_ali_dir.sh
        if copy_ali_prefixes is None:
            copy_ali_prefixes = model.extra.get("options", {}).get("copy_ali_prefixes", "")
            if copy_ali_prefixes:
                log.info("numerator alignments: --copy-ali-prefixes %r, as %s was trained", copy_ali_prefixes,
                         model.source)
        unspliced = dataclasses.replace(pipeline, splice_left=0, splice_right=0, transform=None)
        with_lattice = ((utt, feats) for utt, feats in load_features(data_dir, unspliced) if utt in lattices)
        utts, frames, alis, offsets = load_examples(data_dir, None, tid_alis, with_lattice,
                                                    parse_copy_ali_prefixes(copy_ali_prefixes))
        self.utts, self.alis, self.lats, keep = [], [], [], []
        for i, utt in enumerate(utts):
            if lattices[utt].num_frames != offsets[i + 1] - offsets[i]:
                continue
            self.utts.append(utt)
            self.alis.append(alis[offsets[i]:offsets[i + 1]])
            self.lats.append(lattices[utt])
            keep.append(np.arange(offsets[i], offsets[i + 1]))
        skipped = len(lattices) - len(self.utts)
        if not self.utts:
            raise InputError(f"{data_dir}: no utterance has features, an alignment in {ali_dir} and a lattice in "
                             f"{denlat_dir} of the same length")
        if skipped:
            log.warning("%d lattices unused: no features or alignment for the utterance, or lengths differ", skipped)
        frames = frames[np.concatenate(keep)] if len(self.utts) < len(utts) else frames
        self.offsets = np.concatenate([[0], np.cumsum([len(a) for a in self.alis])]).astype(np.int64)
        self.examples = SplicedFrames(frames, self.offsets, pipeline.splice_left, transform=pipeline.transform)

    def rows(self, indices):
        return np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices])


def _minibatches(order, lengths, frames_per_minibatch):
    batch, size = [], 0
    for i in order:
        batch.append(i)
        size += lengths[i]
        if size >= frames_per_minibatch:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _minibatch_pass(nnet, model, data, batch, opts, silence, log_priors, update=None, augment=None):
    """Forward, per-utterance lattice statistics, and (with `update`) backward + update of one minibatch.
    Returns (numerator term, denominator term, frames, dropped frames, correct frames). Without `update`
    (validation) only the objective is computed: no derivative, per utterance or for the minibatch."""
    from kaldilite.decode.denlat import boost_graph_costs
    from kaldilite.nnet.discriminative import forward_log_posteriors

    tm = model.tm
    rows = data.rows(batch)
    inputs = data.examples[rows] if augment is None else data.examples.augmented(rows, *augment)
    fwd = forward_log_posteriors(nnet, inputs, keep=update is not None)
    log_likes = fwd.log_post - log_priors
    deriv = np.zeros_like(log_likes) if update is not None else None
    num_total = den_total = 0.0
    frames = dropped = correct = 0
    start = 0
    for i in batch:
        lat, ali = data.lats[i], data.alis[i]
        n = len(ali)
        pdf_ali = tm.tid_to_pdf[ali]
        if opts.criterion == "smbr":  # objective = expected frame accuracy: reported as num, den 0
            num, total, d = smbr_derivative(lat, log_likes[start:start + n], tm, tm.num_pdfs, ali, opts.acwt, silence,
                                            opts.one_silence_class, derivative=deriv is not None)
            den, drop = 0.0, 0
        else:
            graph = boost_graph_costs(lat, tm.tid_to_phone, ali, silence, opts.boost) if opts.boost else None
            num, den, d, drop = mmi_derivative(lat, log_likes[start:start + n], tm.tid_to_pdf, tm.num_pdfs, pdf_ali,
                                               opts.acwt, graph, opts.drop_frames, derivative=deriv is not None)
            total = den
        if np.isfinite(total):  # a lattice without a complete path has no statistics
            num_total += num
            den_total += den
            frames += n
            dropped += drop
            correct += int((fwd.pdf_post[start:start + n].argmax(axis=1) == pdf_ali).sum())
            if deriv is not None:
                deriv[start:start + n] = d
                if opts.xent_regularize:  # d (x log P(reference pdf)) / d log P = x one-hot(reference)
                    deriv[start + np.arange(n), pdf_ali] += opts.xent_regularize
        start += n
    if update is not None and frames:
        fwd.backward(deriv)
        update(nnet)
    return num_total, den_total, frames, dropped, correct


def _evaluate(nnet, model, data, indices, opts, silence, log_priors):
    totals = np.zeros(5)
    for batch in _minibatches(indices, np.diff(data.offsets), 4096):
        totals += _minibatch_pass(nnet, model, data, batch, opts, silence, log_priors)
    num, den, frames, _, correct = totals
    return (num - den) / max(frames, 1), correct / max(frames, 1)


def train_nnet2_discriminative(data_dir, lang_dir, ali_dir, denlat_dir, src_model, exp_dir,
                               opts: NnetDiscriminativeOptions | None = None):
    """DATA LANG ALI_DIR DENLAT_DIR SRC_MODEL EXP -> EXP/final.mdl (see the module docstring).

    Returns {'objf': [validation MMI objective per frame before training and after each epoch],
    'train_objf': [training-minibatch objective per epoch], 'seconds', 'cpu_seconds'}.
    """
    from kaldilite.lang import LangDir
    from kaldilite.nnet.model import load_nnet_model, save_nnet_model, scaled_log_priors
    from kaldilite.nnet.train import validation_subset
    from kaldilite.nnet.updates import momentum_update, rms_update

    opts = opts or NnetDiscriminativeOptions()
    started, cpu_started = time.perf_counter(), time.process_time()
    exp = Path(exp_dir)
    model = load_nnet_model(src_model)
    if model.priors is None:
        raise InputError(f"{src_model}: has no priors; discriminative training needs the decoding pseudo-likelihoods")
    if not hasattr(model.nnet, "components"):
        raise InputError(f"{src_model}: an ensemble; train its members one at a time")
    if model.ivector is not None:
        raise InputError(f"{src_model}: trained with online i-vectors; sequence training of such a model is not "
                         "implemented (train-nnet2 without --online-ivector-dir)")
    if not (Path(ali_dir) / "tree").is_file():
        raise MissingFileError(f"{Path(ali_dir) / 'tree'}: missing; <ali-dir> is the alignment dir the DNN was "
                               "trained on")
    silence = np.asarray(sorted(LangDir.load(lang_dir).silence_phones), np.int64)
    data = _Utterances(model, data_dir, lang_dir, ali_dir, denlat_dir, opts.copy_ali_prefixes)
    rng = np.random.default_rng(opts.seed)
    valid = validation_subset(data_dir, data.utts, opts.num_utts_subset, rng)
    train_idx, valid_idx = np.flatnonzero(~valid), np.flatnonzero(valid)
    log.info("%d utterances (%d frames) with alignments and lattices; %d held out for the objective",
             len(data.utts), data.offsets[-1], len(valid_idx))
    nnet = model.nnet
    log_priors = scaled_log_priors(model.priors, model.prior_scale).astype(np.float64)
    state = {}
    if opts.update == "rms":
        def update(net):
            rms_update(net, state, opts.learning_rate, 1, opts.momentum, opts.rms_decay, opts.max_change)
    else:
        def update(net):
            momentum_update(net, state, opts.learning_rate, opts.momentum, opts.max_change)
    objf, accs, train_objf = [], [], []
    if len(valid_idx):
        value, acc = _evaluate(nnet, model, data, valid_idx, opts, silence, log_priors)
        objf.append(value)
        accs.append(acc)
        log.info("before training: validation %s objective %.5f per frame, frame accuracy %.4f",
                 opts.criterion.upper(), value, acc)
    lengths = np.diff(data.offsets)
    exp.mkdir(parents=True, exist_ok=True)
    augment = None
    if opts.spec_augment_freq_max_proportion > 0:
        from kaldilite.nnet.train import Nnet2Options

        trained = model.extra.get("options", {})
        spec_augment = Nnet2Options(
            feature_type=model.feature_type, spec_augment_freq_max_proportion=opts.spec_augment_freq_max_proportion,
            spec_augment_cepstral_lifter=trained.get("spec_augment_cepstral_lifter",
                                                      Nnet2Options.spec_augment_cepstral_lifter)).spec_augment(
                2 * data.examples.splice_width + 1, data.examples.frames.shape[1])
        augment = (spec_augment, np.random.default_rng([opts.seed, 3]))
        log.info("%s", spec_augment.describe())

    def save_model(name):
        extra = dict(model.extra, discriminative={"criterion": opts.criterion, "src_model": str(src_model),
                                                  "denlats": str(denlat_dir), "options": dataclasses.asdict(opts),
                                                  "valid_objf": objf, "valid_frame_accuracy": accs})
        out = type(model)(model.tm, nnet, model.priors, model.pipeline, model.raw_feature_dim, model.feature_type,
                          extra, source=f"model {exp / name}", prior_scale=model.prior_scale)
        save_nnet_model(exp / name, out)

    for epoch in range(opts.num_epochs):
        totals = np.zeros(5)
        for batch in _minibatches(rng.permutation(train_idx), lengths, opts.frames_per_minibatch):
            totals += _minibatch_pass(nnet, model, data, batch, opts, silence, log_priors, update, augment)
        num, den, frames, dropped, correct = totals
        train_objf.append((num - den) / max(frames, 1))
        log.info("epoch %d: training %s objective %.5f per frame (%.5f - %.5f) over %d frames, %d dropped, "
                 "frame accuracy %.4f", epoch, opts.criterion.upper(), train_objf[-1], num / max(frames, 1),
                 den / max(frames, 1), frames, dropped, correct / max(frames, 1))
        if len(valid_idx):
            value, acc = _evaluate(nnet, model, data, valid_idx, opts, silence, log_priors)
            objf.append(value)
            accs.append(acc)
            log.info("epoch %d: validation %s objective %.5f per frame, frame accuracy %.4f", epoch,
                     opts.criterion.upper(), value, acc)
        if epoch + 1 < opts.num_epochs:
            save_model(f"{epoch + 1}.mdl")  # as Kaldi's per-iteration N.mdl
    save_model("final.mdl")
    for name in ("tree", "phones.txt"):
        source = Path(ali_dir) / name
        if not source.is_file():
            source = Path(lang_dir) / name
        if source.is_file():
            shutil.copyfile(source, exp / name)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    log.info("train-nnet2-discriminative: %s -> %s in %.1f s (%.1f s CPU); validation objective by epoch: %s",
             src_model, exp / "final.mdl", seconds, cpu, " ".join(f"{v:.4f}" for v in objf))
    return {"objf": objf, "frame_accuracy": accs, "train_objf": train_objf, "seconds": seconds, "cpu_seconds": cpu}
