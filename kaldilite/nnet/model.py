"""The nnet2 acoustic model file: transition model + p-norm network + priors + feature pipeline.

Kaldi's nnet2 `final.mdl` is a TransitionModel followed by an AmNnet (the network and its
priors). Ours is an `.npz` with a JSON header in the same family as the GMM model file
(`kaldilite.gmm.model`: format "kaldilite-model", `model_type` "nnet2"), so a model names
everything its input needs: the raw feature type and dimension, CMVN mode, splice context and
the preconditioning transform (all in a `FeaturePipeline`). `NnetAcousticModel.log_likelihoods`
is the scorer handed to the decoder: log posterior - log prior, Kaldi's DecodableAmNnet
(posteriors floored at 1e-20); the decoder applies the acoustic scale. `prior_scale` (nnet1's
nnet-forward --prior-scale, set at training: train-nnet2 --prior-scale) divides by prior^scale
instead: below 1 it keeps part of the prior in the scores, which on command grammars with
fillers and a garbage phone loop moves fewer commands to the garbage side (conf/nnet2.conf).

A feature-dimension mismatch is reported with the whole chain, e.g.
"model exp/nnet2/final.mdl expects 117-dim input (13-dim mfcc + speaker CMVN, spliced -4/+4 =
117, LDA 117) but the features are 39-dim; ...".

Speaker-adapted input (`train-nnet2 --transform-dir`, Kaldi's get_egs2.sh with feat_type=lda
and steps/nnet2/decode.sh --transform-dir): the network then reads the SAT system's features,
`fmllr_pipeline` (CMVN -> splice -> final.mat, the GMM model's own `FeaturePipeline`), through
each speaker's fMLLR transform (trans.* of align-fmllr / decode-fmllr, `transform-feats
--utt2spk`), and only then its own `pipeline` (splice +-w and the preconditioning transform, no
CMVN). Such a model records `fmllr_pipeline` and refuses to score features without transforms.

Online i-vector input (`train-nnet2 --online-ivector-dir`, Kaldi's get_egs2.sh / get_lda.sh and
steps/nnet2/decode.sh with --online-ivector-dir): the network input of frame t is
[pipeline output(t), ivector(t)], the spliced features with the frame's i-vector appended, not
spliced itself (nnet2's SpliceComponent const_component_dim); ivector(t) is row t // period of the
utterance's online i-vectors (`kaldilite.ivector.ivector_dir.ivectors_of_frames`). The
preconditioning transform then covers the whole input (get_lda.sh), so it is not the pipeline's:
the pipeline ends at the splicing and `input_transform` maps [spliced, i-vector]. The model records
`ivector` (`IvectorInput`: dim, period, the extractor's id = md5 of its final.ie, as Kaldi's
final.ie.id) and refuses to score without i-vectors, or with those of another extractor, dimension or
period. Scoring: `log_likelihoods(feats, ivectors)`, ivectors one row per frame.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
# one file format for every model type
from kaldilite.gmm.model import MODEL_FORMAT, corrupt_model_file, pipeline_to_header, read_model_file
from kaldilite.hmm.topology import Topology
from kaldilite.hmm.transition_model import TransitionModel
from kaldilite.nnet.network import NnetEnsemble, nnet_from_arrays

# 2: the network may be an ensemble; 3: fMLLR-adapted input (`fmllr_pipeline`). A model is written
# with the lowest version that can hold it, so older readers refuse only what they cannot score.
# 4: a prior scale other than 1 (an older reader would silently divide by the whole prior).
# 5: the pipelines' matrices (preconditioning, the fMLLR pipeline's LDA+MLLT) are arrays of the
# file (`pipeline_transform`, `fmllr_pipeline_transform`) instead of JSON lists (megabytes of
# header to parse whenever a verb asked the model its type): every model with a transform.
# 6: the pipeline's CMVN is 'online' (the global stats an array of the file, `pipeline_online_cmvn_stats`).
# 7: an ensemble averaged other than arithmetically (train-nnet2 --posterior-averaging geometric): a reader
# that predates the `averaging` field would score it as the arithmetic mean without a word.
# 8: an online i-vector input (`ivector`, the `input_transform` array over [spliced features, i-vector]): an older
# reader would find no transform in the pipeline and score the network on features of the wrong dimension.
NNET_MODEL_VERSION = 8
PRIOR_FLOOR = 1e-20


def scaled_log_priors(priors, prior_scale):
    """float32 prior_scale * log p(pdf), priors floored at PRIOR_FLOOR: what the pseudo
    log-likelihoods log p(pdf|x) - prior_scale log p(pdf) subtract from the log posteriors."""
    return (prior_scale * np.log(np.maximum(priors, PRIOR_FLOOR))).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class IvectorInput:
    """The online i-vectors an nnet2 model was trained with: appended to each frame's spliced features.

    dim: i-vector dimension; period: frames between i-vector estimates (extract-ivectors-online
    --ivector-period); extractor_id: md5 of the extractor's final.ie (`kaldilite.ivector.ivector_dir.
    extractor_id`, Kaldi's final.ie.id); extractor: the extractor file it was trained with, as its i-vector
    dir names it (train-nnet2 records it when its md5 is still extractor_id; "" if not): messages, and
    export-model's default --ivector-extractor."""

    dim: int
    period: int
    extractor_id: str
    extractor: str = ""

    def __post_init__(self):
        if self.dim < 1 or self.period < 1 or not self.extractor_id:
            raise InputError(f"i-vector input: dimension {self.dim} and period {self.period} must be positive, and "
                             "the extractor's id given")

    def describe(self):
        return f"{self.dim}-dim online i-vector every {self.period} frames"

    def extractor_name(self):
        return self.extractor or f"the final.ie of md5 {self.extractor_id}"

    def check_dir(self, ivector_dir, source):
        """Refuse an `OnlineIvectorDir` of another extractor, dimension or period, in one line naming the fix."""
        fix = (f"extract them with the extractor the model was trained with ({self.extractor_name()}: kaldilite "
               f"extract-ivectors-online --ivector-period {self.period} <data> <extractor-dir> <dir>)")
        if ivector_dir.known_extractor_id(fix) != self.extractor_id:
            raise InputError(f"{ivector_dir.path}: i-vectors of another extractor (final.ie.id {ivector_dir.extractor_id}"
                             f") than {source} was trained with ({self.extractor_id}); {fix}")
        if ivector_dir.dim != self.dim:
            raise InputError(f"{ivector_dir.scp_path}: {ivector_dir.dim}-dim i-vectors but {source} takes "
                             f"{self.dim}-dim ones; {fix}")
        if ivector_dir.period != self.period:
            raise InputError(f"{ivector_dir.path / 'ivector_period'}: period {ivector_dir.period} but {source} was "
                             f"trained on period {self.period}; {fix}")

    def to_dict(self):
        return dataclasses.asdict(self)


class NnetAcousticModel:
    """What decoding needs: `tm`, `nnet` (an `Nnet` or `NnetEnsemble`), `priors` (per pdf), `pipeline`,
    and the input description; `fmllr_pipeline` (optional) is the GMM system's pipeline whose output
    each speaker's fMLLR transform maps before `pipeline` runs; `ivector` (optional `IvectorInput`):
    each frame's online i-vector is appended to the pipeline's output, and `input_transform` (the
    preconditioning of such a model, None once folded) maps the whole input."""

    def __init__(self, tm: TransitionModel, nnet, priors, pipeline, raw_feature_dim, feature_type="mfcc",
                 extra=None, source="nnet2 model", fmllr_pipeline=None, prior_scale=1.0, ivector=None,
                 input_transform=None):
        self.tm = tm
        self.nnet = nnet
        self.priors = None if priors is None else np.asarray(priors, dtype=np.float64)
        self.pipeline = pipeline
        self.raw_feature_dim = int(raw_feature_dim)
        self.feature_type = feature_type
        self.extra = dict(extra or {})
        self.source = source
        self.fmllr_pipeline = fmllr_pipeline
        self.prior_scale = float(prior_scale)
        self.folded_transform_dim = None  # with_preconditioning_folded: the LDA output dim now inside the network
        self.ivector = ivector
        self.input_transform = None if input_transform is None else np.asarray(input_transform, np.float64)
        if self.input_transform is not None and ivector is None:
            raise InputError(f"{source}: an input transform after the pipeline goes with an i-vector input only")
        if ivector is not None and pipeline.transform is not None:
            raise InputError(f"{source}: with an i-vector input the preconditioning covers [features, i-vector]; "
                             "the pipeline must end at the splicing")
        if not 0.0 <= self.prior_scale <= 1.0:
            raise InputError(f"{source}: prior scale must be in [0, 1], got {prior_scale}")
        if fmllr_pipeline is not None and pipeline.cmvn != "none":
            raise InputError(f"{source}: with fMLLR-adapted input CMVN belongs to the fMLLR pipeline, not after it")
        if nnet.num_pdfs != tm.num_pdfs:
            raise InputError(f"{source}: the network has {nnet.num_pdfs} outputs but the tree/transition model "
                             f"{tm.num_pdfs} pdfs")
        if self.priors is not None and self.priors.shape != (tm.num_pdfs,):
            raise InputError(f"{source}: {self.priors.shape} priors for {tm.num_pdfs} pdfs")
        expected = self.appended_dim
        if self.input_transform is not None:
            if self.input_transform.ndim != 2 or self.input_transform.shape[1] not in (expected, expected + 1):
                raise InputError(f"{source}: a {self.input_transform.shape} input transform does not take the "
                                 f"{expected}-dim features + i-vector")
            expected = self.input_transform.shape[0]
        if expected != nnet.input_dim:
            raise InputError(f"{source}: the feature pipeline makes {expected}-dim features but the network "
                             f"takes {nnet.input_dim}")

    @property
    def num_pdfs(self):
        return self.tm.num_pdfs

    @property
    def input_dim(self):
        return self.nnet.input_dim

    @property
    def feature_dim(self):
        """Dimension of the pipeline's output: the `feats` of `log_likelihoods` (without the i-vector)."""
        return self.pipeline.output_dim(self.adapted_dim)

    @property
    def appended_dim(self):
        """Dimension of the pipeline's output with the i-vector appended (= feature_dim without i-vectors)."""
        return self.feature_dim + (self.ivector.dim if self.ivector is not None else 0)

    @property
    def speaker_adapted(self):
        """True if the network reads fMLLR-adapted features (trained with --transform-dir)."""
        return self.fmllr_pipeline is not None

    @property
    def adapted_dim(self):
        """Dimension of what `pipeline` takes: raw features, or the fMLLR pipeline's output."""
        if self.fmllr_pipeline is None:
            return self.raw_feature_dim
        return self.fmllr_pipeline.output_dim(self.raw_feature_dim)

    def with_preconditioning_folded(self):
        """The same scorer with the pipeline's preconditioning transform folded into the network's first
        layer (`Nnet.with_input_transform`) when that costs no more multiplies per frame: `pipeline`
        then ends at the splicing and `log_likelihoods` takes spliced frames, giving the original's
        scores within float32 rounding without the per-frame product (a float64 one in
        `transform_features`). The folded first layer reads the spliced input (D x H multiplies, H the
        first layers' outputs, summed over an ensemble's members) where the two products took
        D x d + d x H; with a reduced --lda-dim d that is cheaper, and the model is returned as it is.
        This model (what `load_nnet_scorer` returns) is for scoring: training and `save_nnet_model`
        keep the file's form, the transform in the pipeline. With an i-vector input the transform folded
        is `input_transform`, over [spliced features, i-vector]."""
        transform = self.pipeline.transform if self.ivector is None else self.input_transform
        if transform is None:
            return self
        spliced = self.pipeline.spliced_dim(self.adapted_dim) if self.ivector is None else self.appended_dim
        reduced = transform.shape[0]
        first_layers = [member.components[0] for member in getattr(self.nnet, "members", [self.nnet])]
        if all(layer.kind == "affine" for layer in first_layers):  # else with_input_transform says why not
            first_outputs = sum(layer.output_dim for layer in first_layers)
            if spliced * first_outputs > spliced * reduced + reduced * first_outputs:
                return self
        folded = NnetAcousticModel(self.tm, self.nnet.with_input_transform(transform, spliced), self.priors,
                                   self.pipeline.with_transform(None), self.raw_feature_dim, self.feature_type,
                                   self.extra, self.source, self.fmllr_pipeline, self.prior_scale, self.ivector)
        folded.folded_transform_dim = transform.shape[0]
        return folded

    def describe_input(self):
        """'13-dim mfcc + speaker CMVN, spliced -4/+4 = 117, LDA 117' (what the model expects); with
        fMLLR input e.g. '13-dim mfcc + speaker CMVN, spliced -3/+3 = 91, LDA+MLLT 40, per-speaker
        fMLLR, spliced -4/+4 = 360, LDA 360'."""
        text = f"{self.raw_feature_dim}-dim {self.feature_type}"
        if self.fmllr_pipeline is not None:
            text += _describe_steps(self.fmllr_pipeline, self.raw_feature_dim, "LDA+MLLT") + ", per-speaker fMLLR"
        text += _describe_steps(self.pipeline, self.adapted_dim, "LDA")
        if self.ivector is not None:
            text += f", + {self.ivector.describe()} = {self.appended_dim}"
            if self.input_transform is not None:
                text += f", LDA {self.input_transform.shape[0]}"
        if self.folded_transform_dim is not None:  # described as the file has it
            text += f", LDA {self.folded_transform_dim}"
        return text

    def _mismatch(self, actual_dim, stage, expected=None):
        from kaldilite.feat.pipeline import feature_config_hint

        expected = self.appended_dim if expected is None else expected  # [features, i-vector] before input_transform
        return DimensionMismatchError(
            f"{self.source} expects {expected}-dim input ({self.describe_input()}) but the {stage} are "
            f"{actual_dim}-dim; make the features with the options the model was trained on "
            f"({self.raw_feature_dim}-dim {self.feature_type}, "
            f"{feature_config_hint(self.raw_feature_dim, self.feature_type)}) or retrain")

    def check_raw_features(self, data_dir):
        """Before the pipeline: DATA/feats.scp must hold `raw_feature_dim`-dim features (the check GMMs make,
        `kaldilite.feat.pipeline.check_raw_feature_dim`, naming the whole input chain)."""
        from kaldilite.feat.pipeline import check_raw_feature_dim

        check_raw_feature_dim(self.source, data_dir, self.raw_feature_dim, self.describe_input(), self.feature_type)

    def log_likelihoods(self, feats, ivectors=None):
        """(T x num_pdfs) float32 pseudo log-likelihoods log p(pdf|x) - prior_scale log p(pdf) of pipeline output.

        A model with an i-vector input takes the frames' i-vectors as `ivectors` (T x ivector dim, row t
        frame t's: `kaldilite.ivector.ivector_dir.ivectors_of_frames` of the stored rows, or
        `OnlineIvectorFeature.get_frames` of a stream), or `feats` with them already appended
        (T x (feature_dim + ivector dim), `append_ivectors`: what batch decoding streams)."""
        feats = self.network_input(feats, ivectors)
        loglikes = self.nnet.log_posteriors(feats, PRIOR_FLOOR)
        if self.priors is not None:
            loglikes -= scaled_log_priors(self.priors, self.prior_scale)
        return loglikes.astype(np.float32, copy=False)

    def append_ivectors(self, feats, ivectors):
        """[feats, ivectors] (T x appended_dim float32) after checking both against the model."""
        feats = np.asarray(feats)
        if self.ivector is None:
            raise InputError(f"{self.source} was trained without i-vectors; drop the i-vectors (--online-ivector-dir)")
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            raise self._mismatch(feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}", "features (without "
                                 "i-vectors)", self.feature_dim)
        ivectors = np.asarray(ivectors)
        if ivectors.ndim != 2 or ivectors.shape != (len(feats), self.ivector.dim):
            raise DimensionMismatchError(f"{self.source} takes one {self.ivector.dim}-dim i-vector per frame; got "
                                         f"i-vectors of shape {ivectors.shape} for {len(feats)} frames")
        return np.hstack([feats.astype(np.float32, copy=False), ivectors.astype(np.float32, copy=False)])

    def missing_ivectors_error(self):
        return InputError(f"{self.source} was trained with online i-vectors ({self.ivector.describe()}); decode "
                          f"with --online-ivector-dir DIR, DIR from kaldilite extract-ivectors-online with its "
                          f"extractor ({self.ivector.extractor_name()})")

    def network_input(self, feats, ivectors=None):
        """What the network reads (checked): the features, the i-vectors appended, the input transform applied."""
        feats = np.asarray(feats)
        if ivectors is not None:
            feats = self.append_ivectors(feats, ivectors)
        elif self.ivector is not None and feats.ndim == 2 and feats.shape[1] == self.feature_dim:
            raise self.missing_ivectors_error()
        width = self.appended_dim
        if feats.ndim != 2 or feats.shape[1] != width:
            raise self._mismatch(feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}", "features")
        if self.input_transform is not None:
            from kaldilite.feat.functions import transform_features

            feats = transform_features(feats, self.input_transform, where=self.source)
        return np.asarray(feats, dtype=np.float32)

    def features(self, data_dir, utterances=None, transforms=None, transform_dir=None):
        """(utt, pipeline output) for a data dir, after checking the raw dimension once: the network input
        of a model without i-vectors; with them, the `feats` of `log_likelihoods` (`ivector_appended` adds
        the frames' i-vectors).

        A speaker-adapted model needs `transforms` (speaker -> fMLLR matrix, `read_transform_dir`;
        `transform_dir` names their source in messages); a speaker-independent one refuses them.
        """
        from kaldilite.feat.pipeline import load_features

        self.check_raw_features(data_dir)
        if self.fmllr_pipeline is None:
            if transforms is not None:
                raise InputError(f"{self.source} is speaker-independent (trained without --transform-dir): it takes "
                                 f"no fMLLR transforms; drop --transform-dir {transform_dir or ''}".rstrip())
            return load_features(data_dir, self.pipeline, utterances)
        if transforms is None:
            raise InputError(f"{self.source} was trained on fMLLR-adapted features ({self.describe_input()}); "
                             "decode with --transform-dir DIR, DIR holding the SAT system's trans.* for this data "
                             "(e.g. exp/tri3b/decode_test from decode-fmllr)")
        adapted = speaker_adapted_features(data_dir, self.fmllr_pipeline, transforms, utterances, transform_dir)
        return ((utt, self.pipeline.apply(feats, where=f"{data_dir} ({utt})")) for utt, feats in adapted)


def speaker_adapted_features(data_dir, fmllr_pipeline, transforms, utterances=None, transform_dir=None):
    """(utt, features) of a data dir through a SAT system's pipeline, then its speaker's fMLLR
    transform (Kaldi's `transform-feats --utt2spk ark:trans.JOB`); a speaker without a
    transform is an error (Kaldi skips the utterance with a warning)."""
    from kaldilite.feat.pipeline import load_features
    from kaldilite.io.datadir import DataDir
    from kaldilite.transform.fmllr import apply_transform

    utt2spk = DataDir.load(data_dir).utt2spk or {}
    where = f"--transform-dir {transform_dir}" if transform_dir else "fMLLR transforms"
    for utt, feats in load_features(data_dir, fmllr_pipeline, utterances):
        speaker = utt2spk.get(utt, utt)
        transform = transforms.get(speaker)
        if transform is None:
            raise InputError(f"{where}: no fMLLR transform for speaker {speaker} (utterance {utt} of {data_dir}); "
                             "estimate them on this data dir (align-fmllr for training data, decode-fmllr for test "
                             "data) and pass that dir")
        yield utt, apply_transform(feats, transform)


def check_online_ivectors(model, data_dir, online_ivector_dir, utterances=None):
    """steps/nnet2/decode.sh's --online-ivector-dir, checked before any utterance is decoded: given
    exactly when `model` was trained with i-vectors, of its extractor, dimension and period, covering
    every utterance of `data_dir` (or `utterances`). -> `OnlineIvectorDir`, or None (no i-vectors)."""
    if model.ivector is None:
        if online_ivector_dir is not None:
            raise InputError(f"{model.source} was trained without i-vectors (train-nnet2 without "
                             f"--online-ivector-dir); drop --online-ivector-dir {online_ivector_dir}")
        return None
    if online_ivector_dir is None:
        raise model.missing_ivectors_error()
    from kaldilite.io.datadir import DataDir
    from kaldilite.ivector.ivector_dir import OnlineIvectorDir

    ivectors = OnlineIvectorDir(online_ivector_dir)
    model.ivector.check_dir(ivectors, model.source)
    if utterances is None:
        data = DataDir.load(data_dir)
        utterances = list(data.feats_scp or data.utt2spk or {})
    ivectors.check_covers(list(utterances), data_dir)
    return ivectors


def ivector_appended(model, features, ivectors):
    """(utt, [feats, frame i-vectors]) for (utt, feats) of `model`'s pipeline and an `OnlineIvectorDir`
    (None: `features` as they are); what `log_likelihoods` takes without a separate i-vector matrix."""
    if ivectors is None:
        yield from features
        return
    for utt, feats in features:
        yield utt, model.append_ivectors(feats, ivectors.frames(utt, len(feats)))


def read_transform_dir(transform_dir, lda_mllt=None):
    """TRANSFORM_DIR/trans.* (align-fmllr or decode-fmllr output) -> dict speaker -> fMLLR matrix.

    As steps/nnet2/decode.sh checks, the LDA+MLLT matrix `lda_mllt` the transforms were
    estimated after (the model's) must equal TRANSFORM_DIR/final.mat or TRANSFORM_DIR/../final.mat
    (an alignment dir holds a copy, a decode dir sits in the system's dir); float32 rounding of
    the file is tolerated.
    """
    from pathlib import Path

    from kaldilite.io.tables import read_matrix
    from kaldilite.transform.fmllr import read_speaker_transforms_dir

    folder = Path(transform_dir)
    if not folder.is_dir():
        raise MissingFileError(f"--transform-dir {folder}: no such directory")
    transforms = read_speaker_transforms_dir(folder)
    if not transforms:
        raise MissingFileError(f"{folder / 'trans.1'}: no fMLLR transforms in --transform-dir {folder}; give the "
                               "output dir of align-fmllr (training data) or decode-fmllr (test data)")
    if lda_mllt is not None:
        candidates = [p for p in (folder / "final.mat", folder.parent / "final.mat") if p.is_file()]
        if not candidates:
            raise MissingFileError(f"{folder / 'final.mat'} (or {folder.parent / 'final.mat'}): missing; the fMLLR "
                                   f"transforms in {folder} must come with the LDA+MLLT matrix they follow")
        expected = np.asarray(lda_mllt, np.float64)
        scale = max(float(np.abs(expected).max()), 1.0)
        if not any(_same_matrix(np.asarray(read_matrix(str(p)), np.float64), expected, scale) for p in candidates):
            raise InputError(f"{candidates[0]}: LDA+MLLT matrix differs from the one the model's features use; the "
                             f"transforms in {folder} belong to another SAT system")
    return transforms


def check_transform_speakers(data_dir, transforms, transform_dir):
    """Every speaker of DATA_DIR must have a transform: checked before decoding starts, not mid-way
    (`speaker_adapted_features` would stop at the first uncovered utterance)."""
    from kaldilite.io.datadir import DataDir

    utt2spk = DataDir.load(data_dir).utt2spk or {}
    missing = sorted(set(utt2spk.values()) - set(transforms))
    if missing:
        more = f" ... ({len(missing)} in all)" if len(missing) > 5 else ""
        raise InputError(f"--transform-dir {transform_dir}: no fMLLR transform for speaker(s) {' '.join(missing[:5])}"
                         f"{more} of {data_dir}; estimate them on {data_dir} (decode-fmllr, or decode-commands with "
                         "the SAT system) and pass that dir")


def _same_matrix(a, b, scale):
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6 * scale))


def _describe_steps(pipeline, input_dim, transform_name):
    p = pipeline
    parts = []
    if p.cmvn != "none":
        parts.append(f" + {p.cmvn} CMVN" + (" with variance" if p.norm_vars else ""))
    if p.delta_order:
        parts.append(f" + deltas order {p.delta_order}")
    if p.splice_left or p.splice_right:
        parts.append(f", spliced -{p.splice_left}/+{p.splice_right} = {p.spliced_dim(input_dim)}")
    if p.transform is not None:
        parts.append(f", {transform_name} {p.transform.shape[0]}")
    return "".join(parts)


def save_nnet_model(path, model: NnetAcousticModel):
    """Write the model atomically (npz + JSON header)."""
    from kaldilite.utils import atomic_path

    pipeline_dict, pipeline_arrays = pipeline_to_header(model.pipeline, "pipeline_")
    fmllr_dict, fmllr_arrays = pipeline_to_header(model.fmllr_pipeline, "fmllr_pipeline_")

    header = {
        "format": MODEL_FORMAT,
        "version": (8 if model.ivector is not None
                    else 7 if getattr(model.nnet, "averaging", "arithmetic") != "arithmetic"
                    else 6 if model.pipeline.cmvn == "online" else 5 if pipeline_arrays or fmllr_arrays
                    else 4 if model.prior_scale != 1.0 else 3 if model.speaker_adapted
                    else 2 if isinstance(model.nnet, NnetEnsemble) else 1),
        "model_type": "nnet2",
        "feature_dim": model.input_dim,
        "raw_feature_dim": model.raw_feature_dim,
        "feature_type": model.feature_type,
        "num_pdfs": model.num_pdfs,
        "num_transition_ids": model.tm.num_transition_ids,
        "topology": model.tm.topo.to_text(),
        "pipeline": pipeline_dict,
        "fmllr_pipeline": fmllr_dict,
        "nnet": model.nnet.config(),
        "has_priors": model.priors is not None,
        "prior_scale": model.prior_scale,
        "ivector": None if model.ivector is None else model.ivector.to_dict(),
        "extra": model.extra,
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    arrays.update(model.tm.to_arrays())
    arrays.update(model.nnet.to_arrays())
    if model.priors is not None:
        arrays["priors"] = model.priors
    arrays.update(pipeline_arrays)
    arrays.update(fmllr_arrays)
    if model.input_transform is not None:
        arrays["input_transform"] = model.input_transform
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_nnet_scorer(path) -> NnetAcousticModel:
    """`load_nnet_model`, the preconditioning folded into the first layer: what decoding verbs score with."""
    return load_nnet_model(path).with_preconditioning_folded()


def load_nnet_model(path) -> NnetAcousticModel:
    """Read a model written by `save_nnet_model`; a GMM model file is refused with a pointer."""
    from kaldilite.feat.pipeline import FeaturePipeline

    path = os.fspath(path)
    header, arrays = read_model_file(path, "kaldilite train-nnet2")
    if header.get("model_type") != "nnet2":
        raise InputError(f"{path}: a {header.get('model_type')!r} model, not an nnet2 model; use `kaldilite decode` "
                         "for GMM models")
    if header.get("version", 0) > NNET_MODEL_VERSION:
        raise InputError(f"{path}: nnet2 model format version {header['version']} is newer than this kaldilite "
                         f"understands ({NNET_MODEL_VERSION}); upgrade kaldilite")
    try:
        topo = Topology.from_text(header["topology"], source=f"{path} (topology)")
        tm = TransitionModel.from_arrays(topo, arrays)
        nnet = nnet_from_arrays(header["nnet"], arrays)
        pipeline = FeaturePipeline.from_header(header["pipeline"], arrays)
        priors = arrays.get("priors")
        fmllr = header.get("fmllr_pipeline")
        ivector = header.get("ivector")
        if ivector is not None and "input_transform" not in arrays:
            raise InputError("an i-vector input without its input_transform array")
        return NnetAcousticModel(tm, nnet, priors, pipeline, header["raw_feature_dim"],
                                 header.get("feature_type", "features"), header.get("extra"), source=f"model {path}",
                                 fmllr_pipeline=None if fmllr is None else FeaturePipeline.from_header(fmllr, arrays),
                                 prior_scale=header.get("prior_scale", 1.0),
                                 ivector=None if ivector is None else IvectorInput(**ivector),
                                 input_transform=arrays.get("input_transform") if ivector is not None else None)
    except (KeyError, InputError) as exc:
        raise corrupt_model_file(path, exc, "nnet2") from None
