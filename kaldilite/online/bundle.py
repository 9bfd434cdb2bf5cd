"""Model bundles for online decoding: `export-model` writes one self-contained directory, and
`ModelBundle.load` reads it back for `decode-online`.

Follows Kaldi's steps/online/prepare_online_decoding.sh, which gathers what online decoding
needs into one dir with a `conf/online.conf` pointing at `conf/mfcc.conf` and
`conf/online_cmvn.conf` plus `global_cmvn.stats` (the online-CMVN prior). A bundle holds:

    bundle.json           format, version, model type, sample rate, where it came from (and the
                          online-CMVN carry weight the rule was calibrated with, if any)
    final.mdl             the acoustic model (its feature pipeline inside)
    HCLG.npz              the decoding graph (flat arrays, loads in milliseconds)
    words.txt             graph output symbols
    words/fillers.txt     filler and garbage words (mean "rejected"); may be empty
    phones.txt, phones/silence.csl   silence phones for endpointing
    rejection.json        the rejection rule and calibrated threshold (`RejectionRule`): the graph
                          dir's own, calibrated on this model's decodes (`bundle_rejection_rule`);
                          `ModelBundle.load` refuses final.mdl when it is not the model the rule's
                          calibration decodes recorded (SHA-256), and any rule reading a feature
                          online decoding does not measure (`refuse_offline_rule`)
    global_cmvn.stats     summed training CMVN stats, Kaldi text matrix (if the model uses CMVN)
    conf/mfcc.conf        feature extraction options (Kaldi config)
    conf/online_cmvn.conf OnlineCmvn options
    conf/online.conf      decoder, endpoint and VAD options (`OnlineDecodingOptions`); its
                          --cmvn-silence-weight is the carry the rule was calibrated with when the
                          rule's decode dir recorded one (`calibrated_cmvn_carry`); another weight,
                          or --carry-cmvn=false, is warned at load
    ivector_extractor/final.ie, conf/ivector_extractor.conf
                          for an nnet2 model with an online i-vector input (train-nnet2
                          --online-ivector-dir): the extractor it was trained with (UBM and its
                          feature pipeline inside; its md5 must be the model's extractor id, as
                          Kaldi's final.ie.id) and the extraction options (`OnlineIvectorExtractionConfig`:
                          --ivector-period = the model's, the rest the extractor's training values)

The acoustic model is reached through a scorer, `log_likelihoods(feats) -> (T, num_pdfs)`,
`num_pdfs`, `pipeline`. `register_model_type(name, loader)` lets another model family (the
nnet2 DNN) plug in: `loader(path)` returns a `LoadedModel` (tid_to_pdf, tid_to_phone, scorer,
pipeline, feature config check); `bundle.json`'s `model_type` picks it.
"""

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "kaldilite-online-bundle"
BUNDLE_VERSION = 1
REQUIRED_FILES = ("bundle.json", "final.mdl", "HCLG.npz", "words.txt", "phones/silence.csl", "rejection.json",
                  "conf/mfcc.conf", "conf/online_cmvn.conf", "conf/online.conf")
DEFAULT_ONLINE_CONF = Path(__file__).resolve().parents[2] / "conf" / "online.conf"
IVECTOR_EXTRACTOR = "ivector_extractor/final.ie"
IVECTOR_CONF = "conf/ivector_extractor.conf"


@dataclasses.dataclass
class LoadedModel:
    """What online decoding needs from a model file."""

    model_type: str
    tid_to_pdf: np.ndarray
    tid_to_phone: np.ndarray
    scorer: object
    pipeline: object        # kaldilite.feat.pipeline.FeaturePipeline
    raw_feature_dim: int = None
    transition_model: object = None  # kaldilite.hmm.transition_model.TransitionModel (the graph check's)


class GmmScorer:
    """Diagonal-GMM log-likelihoods (AmDiagGmm) behind the scorer interface."""

    def __init__(self, am, pipeline):
        self.am = am
        self.pipeline = pipeline

    @property
    def num_pdfs(self):
        return self.am.num_pdfs

    @property
    def feature_dim(self):
        return self.am.dim

    def log_likelihoods(self, feats):
        return self.am.log_likelihoods(feats)


def _load_gmm(path):
    from kaldilite.gmm.model import load_model

    tm, am, pipeline, extra = load_model(path)
    if pipeline is None:
        raise InputError(f"{path}: the model does not record its feature pipeline; retrain it with this kaldilite")
    return LoadedModel("gmm", tm.tid_to_pdf, tm.tid_to_phone, GmmScorer(am, pipeline), pipeline,
                       extra.get("raw_feature_dim"), tm)


def _load_nnet2(path):
    from kaldilite.nnet.model import load_nnet_scorer

    model = load_nnet_scorer(path)
    if model.speaker_adapted:
        raise InputError(f"{path}: an nnet2 model on fMLLR-adapted features (trained with --transform-dir); online "
                         "decoding has no speaker transforms: export a speaker-independent one (train-nnet2 without "
                         "--transform-dir)")
    # NnetAcousticModel already is a scorer: log_likelihoods (log posterior - log prior), num_pdfs, pipeline.
    return LoadedModel("nnet2", model.tm.tid_to_pdf, model.tm.tid_to_phone, model, model.pipeline,
                       model.raw_feature_dim, model.tm)


_MODEL_LOADERS = {"gmm": _load_gmm, "nnet2": _load_nnet2}


def register_model_type(name, loader):
    """Make `model_type` `name` loadable: `loader(path) -> LoadedModel` (e.g. the nnet2 DNN)."""
    _MODEL_LOADERS[name] = loader


def model_header(path):
    """A model file's header (`read_model_header`), read once per process (`load_once`: a decoding
    verb and its jobs ask it of the same file again and again). Read-only."""
    from kaldilite.gmm.model import read_model_header
    from kaldilite.utils.load_once import load_once

    return load_once(path, read_model_header, kind="header")  # headers cannot evict the models loaded


def model_type_of(path):
    """The model type recorded in a model file's header (gmm, nnet2, ...)."""
    return model_header(path).get("model_type", "gmm")


def _refuse_non_mfcc(loaded, path):
    """Online decoding computes MFCC (the bundle's mfcc.conf, at any resolution): a network trained on
    other raw features (train-nnet2 --feat-type fbank ...) would be fed MFCC of the same dimension.
    Only the online path refuses it; decode-commands reads the data dir's own feats.scp."""
    feature_type = getattr(loaded.scorer, "feature_type", "mfcc")
    if not (feature_type == "features" or feature_type.startswith("mfcc")):
        raise InputError(f"{path}: an nnet2 model on {feature_type} features; online decoding computes MFCC "
                         "only (retrain on MFCC)")


def load_scoring_model(path, model_type=None):
    model_type = model_type or model_type_of(path)
    loader = _MODEL_LOADERS.get(model_type)
    if loader is None:
        raise InputError(f"{path}: model type {model_type!r} cannot be decoded online by this kaldilite "
                         f"(known: {', '.join(sorted(_MODEL_LOADERS))})")
    return loader(path)


# ---------------------------------------------------------------------------------- CMVN stats

def _refuse_speaker_adapted(model_path):
    """A SAT model (train-sat's final.mdl) is trained on fMLLR-adapted features: decoded on the
    unadapted stream it is worse than the speaker-independent model it came from, and online
    decoding estimates no per-speaker fMLLR. Refuse it instead of exporting a silently bad bundle."""
    header = model_header(model_path)
    if model_type_of(model_path) == "gmm" and header.get("extra", {}).get("speaker_adapted"):
        raise InputError(f"{model_path}: a speaker-adapted (SAT) model needs per-speaker fMLLR, which online "
                         f"decoding does not estimate; export its speaker-independent model "
                         f"(--model {Path(model_path).parent / 'final.alimdl'}, with --rejection FILE or "
                         f"--default-rejection: the graph's rule was calibrated on fMLLR decodes) or an nnet2/tri2b "
                         f"system")


# ---------------------------------------------------------------------------------- the bundle

@dataclasses.dataclass(eq=False)
class ModelBundle:
    """A loaded bundle: everything `OnlineRecognizer` needs."""

    path: Path
    model: LoadedModel
    graph: object
    words: object                 # SymbolTable
    fillers: set
    silence_phone_ids: tuple      # phones/silence.csl
    rejection: object             # RejectionRule
    mfcc_opts: object             # MfccOptions
    cmvn_opts: object             # OnlineCmvnOptions
    global_cmvn: np.ndarray       # (2, D+1) or None
    online_opts: object           # OnlineDecodingOptions
    info: dict
    ivector_model: object = None  # kaldilite.ivector.model.IvectorModel (UBM, extractor, pipeline) or None
    ivector_opts: object = None   # OnlineIvectorExtractionConfig, with the i-vector model

    @property
    def scorer(self):
        return self.model.scorer

    @property
    def pipeline(self):
        return self.model.pipeline

    @property
    def tid_to_pdf(self):
        return self.model.tid_to_pdf

    @property
    def tid_to_phone(self):
        return self.model.tid_to_phone

    @property
    def sample_rate(self):
        return int(self.mfcc_opts.frame_opts.sample_frequency)

    def silence_phones(self, endpoint_config=None):
        """Phone ids endpointing counts as silence: --endpoint.silence-phones, else phones/silence.csl."""
        if endpoint_config is not None and endpoint_config.silence_phones.strip():
            return np.array(endpoint_config.silence_phone_list(), dtype=np.int64)
        return np.array(self.silence_phone_ids, dtype=np.int64)

    def cmvn_state(self):
        from kaldilite.feat.cmvn import OnlineCmvnState

        return OnlineCmvnState(global_stats=None if self.global_cmvn is None else self.global_cmvn.copy())

    def speaker_state(self):
        """What a new speaker starts from (`SpeakerState`): the global CMVN prior and, for a model with
        an i-vector input, empty i-vector stats (the prior alone); the extractor's CMVN state is left
        None, which `OnlineFeaturePipeline` starts from its pipeline's own prior."""
        from kaldilite.online.recognizer import SpeakerState

        if self.ivector_model is None:
            return SpeakerState(self.cmvn_state())
        from kaldilite.ivector.online import OnlineIvectorAdaptationState

        return SpeakerState(self.cmvn_state(), None,
                            OnlineIvectorAdaptationState.initial(self.ivector_model.extractor, self.ivector_opts))

    @classmethod
    def load(cls, path, online_config=None, overrides=None):
        """Read a bundle; `online_config` (a Kaldi config file) and `overrides` ({option: value})
        replace the bundle's conf/online.conf settings."""
        from kaldilite.decode.rejection import RejectionRule, read_fillers
        from kaldilite.feat.cmvn import OnlineCmvnOptions
        from kaldilite.feat.options import MfccOptions
        from kaldilite.graph.compiled import CompiledFst
        from kaldilite.io.config import read_config
        from kaldilite.io.symbols import SymbolTable
        from kaldilite.io.tables import read_matrix
        from kaldilite.lang.langdir import read_phone_list
        from kaldilite.online.recognizer import OnlineDecodingOptions

        path = Path(path)
        if not path.is_dir():
            raise MissingFileError(f"{path}: no such model bundle; make one with `kaldilite export-model "
                                   f"--mfcc-config CONF EXP GRAPH {path}`")
        if not (path / "bundle.json").is_file():  # not a damaged bundle: most often an experiment dir (exp/nnet2)
            what, exp = ("an experiment dir", path) if (path / "final.mdl").is_file() else ("a directory", "EXP")
            raise MissingFileError(f"{path}: {what}, not a model bundle (no bundle.json); make one with "
                                   f"`kaldilite export-model --mfcc-config CONF {exp} GRAPH OUT_DIR` and pass "
                                   f"--model OUT_DIR (the commands recipe's stage 11 exports exp/nnet2_online)")
        for name in REQUIRED_FILES:
            if not (path / name).is_file():
                raise MissingFileError(f"{path / name}: missing from the model bundle; re-run `kaldilite export-model` "
                                       "(or copy the whole directory)")
        try:
            info = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path / 'bundle.json'}:{exc.lineno}: not valid JSON ({exc.msg}); re-run export-model") \
                from None
        if info.get("format") != BUNDLE_FORMAT:
            raise InputError(f"{path / 'bundle.json'}: not a kaldilite online bundle (format {info.get('format')!r})")
        if info.get("version", 0) > BUNDLE_VERSION:
            raise InputError(f"{path / 'bundle.json'}: bundle version {info['version']} is newer than this kaldilite "
                             f"reads ({BUNDLE_VERSION}); upgrade kaldilite")
        rule = RejectionRule.load(path / "rejection.json")
        refuse_offline_rule(rule, path / "rejection.json")
        _check_bundle_model(path, rule)
        model = load_scoring_model(path / "final.mdl", info.get("model_type"))
        _refuse_non_mfcc(model, path / "final.mdl")
        graph = CompiledFst.load(path / "HCLG.npz")
        words = SymbolTable.read(path / "words.txt")
        mfcc_opts = read_config(path / "conf" / "mfcc.conf", MfccOptions)
        cmvn_opts = read_config(path / "conf" / "online_cmvn.conf", OnlineCmvnOptions)
        online_opts = read_config(path / "conf" / "online.conf", OnlineDecodingOptions)
        # the carry weight the threshold was calibrated with: bundle.json's, or conf/online.conf's in a bundle
        # exported before bundle.json recorded it; None when the rule's decodes recorded no carry
        calibrated = None
        if info.get("from", {}).get("cmvn_carry"):
            calibrated = float(info["from"].get("cmvn_silence_weight", online_opts.cmvn_silence_weight))
        if online_config is not None or overrides:
            base = read_config(online_config, OnlineDecodingOptions) if online_config else None
            online_opts = _merge(online_opts, base, overrides)
        if calibrated is not None and not online_opts.carry_cmvn:
            log.warning("%s: decodes each utterance from the online-CMVN prior (--carry-cmvn=false) but its rejection "
                        "threshold was calibrated on decodes carrying the stats from clip to clip of a speaker (%s): "
                        "the threshold does not hold; keep --carry-cmvn=true unless that is the point", path,
                        info["from"]["cmvn_carry"])
        if online_opts.carry_cmvn and calibrated is None:  # a bundle from before export-model shipped the carry
            warn_cmvn_carry_mismatch(path / "final.mdl", model.pipeline, online_opts.cmvn_silence_weight,
                                     "--cmvn-silence-weight", "conf/online.conf")
        elif online_opts.carry_cmvn and online_opts.cmvn_silence_weight != calibrated:  # (decoding as calibrated
            # with a model trained otherwise: export-model said so)
            trained = trained_cmvn_silence_weight(path / "final.mdl", model.pipeline)
            log.warning("%s: decodes with --cmvn-silence-weight %g but its rejection threshold was calibrated on "
                        "decodes carrying the online-CMVN stats with silence frames weighted %g (%s; bundle.json)%s:"
                        " the threshold does not hold; set --cmvn-silence-weight %g unless that is the point", path,
                        online_opts.cmvn_silence_weight, calibrated, info["from"]["cmvn_carry"],
                        ", as the model was trained" if trained == calibrated else "", calibrated)
        global_cmvn = None
        if model.pipeline.cmvn != "none":
            stats_path = path / "global_cmvn.stats"
            if not stats_path.is_file():
                raise MissingFileError(f"{stats_path}: missing from the model bundle (the model uses CMVN); "
                                       "re-run `kaldilite export-model` with --data")
            global_cmvn = read_matrix(stats_path)  # text, float64: every digit export-model wrote
            if model.pipeline.cmvn == "online":  # the file is the model's prior as text: use it exact
                global_cmvn = model.pipeline.online_cmvn_stats.copy()
        raw_dim = _raw_dim(mfcc_opts)
        if global_cmvn is not None and global_cmvn.shape != (2, raw_dim + 1):
            raise DimensionMismatchError(f"{path / 'global_cmvn.stats'}: stats of dimension "
                                         f"{global_cmvn.shape[-1] - 1} "
                                         f"but conf/mfcc.conf makes {raw_dim}-dim features; re-run export-model")
        expected = model.pipeline.output_dim(raw_dim)
        feature_dim = getattr(model.scorer, "feature_dim", getattr(model.scorer, "input_dim", expected))
        if expected != feature_dim:
            raise DimensionMismatchError(
                f"{path}: conf/mfcc.conf makes {raw_dim}-dim features, {expected}-dim after the model's pipeline, "
                f"but the model expects {feature_dim}; the bundle mixes files of different systems")
        silence = read_phone_list(path / "phones" / "silence.csl", "re-run `kaldilite export-model`")
        ivector_model, ivector_opts = _load_bundle_extractor(path, model, raw_dim)
        return cls(path=path, model=model, graph=graph, words=words, fillers=read_fillers(path),
                   silence_phone_ids=tuple(silence), rejection=rule,
                   mfcc_opts=mfcc_opts, cmvn_opts=cmvn_opts, global_cmvn=global_cmvn, online_opts=online_opts,
                   info=info, ivector_model=ivector_model, ivector_opts=ivector_opts)


def refuse_offline_rule(rule, where):
    """Refuse a rejection rule whose logistic score reads a feature only an offline decode measures
    (`OFFLINE_FEATURES`: a SAT first pass, a second system's decode): the online recognizer decodes one
    model in one pass, so every utterance would lack it (and be rejected, `RejectionRule.decide_measures`)."""
    from kaldilite.decode.rejection import OFFLINE_FEATURES

    offline = rule.offline_features()
    if offline:
        reads = ", ".join(f"{name} ({OFFLINE_FEATURES[name]})" for name in offline)
        raise InputError(f"{where}: its logistic score reads {reads}, which online decoding (one model, one pass) "
                         f"does not measure, so it would reject every command; ship a rule calibrated on one "
                         f"model's own decodes (calibrate-rejection --features without {', '.join(offline)})")


def _check_bundle_model(path, rule):
    """Refuse a bundle whose final.mdl is not the model its rule's calibration decodes recorded (a model
    swapped in after export-model): one SHA-256 of final.mdl (~10 ms for a 5 MB nnet2 model). A rule
    without the record (the default rule, or calibrated before decodes recorded their model) is not checked."""
    from kaldilite.graph.provenance import file_sha256

    recorded = (rule.calibration or {}).get("decoded_with")
    if not recorded or not recorded.get("model_sha256"):
        return
    digest = file_sha256(path / "final.mdl")
    if digest != recorded["model_sha256"]:
        raise InputError(f"{path / 'final.mdl'}: not the model its rejection.json was calibrated for (sha256 "
                         f"{digest[:12]}; the rule's decodes were made with {recorded['model']}, sha256 "
                         f"{recorded['model_sha256'][:12]}), so its threshold does not hold; re-export the bundle "
                         "with export-model from that model, or this model with a rule calibrated on its decodes")


def trained_cmvn_silence_weight(model_path, pipeline):
    """The silence weight a model trained on online CMVN carried its training stats with (train-nnet2
    --online-cmvn-silence-weight, in its header), or None (no online CMVN, or a model from before the record)."""
    if pipeline is None or pipeline.cmvn != "online":
        return None
    weight = model_header(model_path).get("extra", {}).get("options", {}).get("online_cmvn_silence_weight")
    return None if weight is None else float(weight)


def warn_cmvn_carry_mismatch(model_path, pipeline, silence_weight, option, where):
    """A warning when a model trained on online CMVN (train-nnet2 --online-cmvn) carried the stats from clip to
    clip with another silence weight than this decode will (decode-online --cmvn-silence-weight, decode-commands
    --online-cmvn-silence-weight): its input then differs from what it learned on, most after long pauses.
    (A model from before train-nnet2 --online-cmvn-silence-weight records nothing and is not checked.)"""
    weight = trained_cmvn_silence_weight(model_path, pipeline)
    if weight is not None and weight != silence_weight:
        log.warning("%s was trained with the online-CMVN stats carried with silence frames weighted %g "
                    "(train-nnet2 --online-cmvn-silence-weight) but decodes with %s %g; set %s %g (%s) unless "
                    "that is the point", model_path, weight, option, silence_weight, option, weight, where)


def _model_ivector(model):
    """The model's `IvectorInput` (an nnet2 model trained with --online-ivector-dir), else None."""
    return getattr(model.scorer, "ivector", None)


def _check_extractor(ivector_model, extractor_path, ivector_input, model_source, raw_dim, fix):
    """Refuse an extractor other than the model's, or one whose features are not the bundle's MFCC."""
    from kaldilite.ivector.ivector_dir import extractor_id

    if extractor_id(extractor_path) != ivector_input.extractor_id:
        raise InputError(f"{extractor_path}: not the i-vector extractor {model_source} was trained with (md5 "
                         f"{extractor_id(extractor_path)}, the model's is {ivector_input.extractor_id}); {fix}")
    extractor = ivector_model.extractor
    if extractor.ivector_dim != ivector_input.dim:
        raise DimensionMismatchError(f"{extractor_path}: {extractor.ivector_dim}-dim i-vectors but {model_source} "
                                     f"takes {ivector_input.dim}-dim ones; {fix}")
    pipeline = ivector_model.pipeline
    expected = pipeline.output_dim(raw_dim) if pipeline is not None else raw_dim
    if expected != extractor.feat_dim:
        raise DimensionMismatchError(f"{extractor_path}: the extractor reads {extractor.feat_dim}-dim features but "
                                     f"the bundle's {raw_dim}-dim MFCC make {expected}-dim ones through its pipeline; "
                                     f"{fix}")


def _load_bundle_extractor(path, model, raw_dim):
    """(IvectorModel, OnlineIvectorExtractionConfig) of a bundle whose model takes i-vectors, else (None, None)."""
    ivector_input = _model_ivector(model)
    if ivector_input is None:
        return None, None
    from kaldilite.io.config import read_config
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig

    fix = "re-run `kaldilite export-model` with --ivector-extractor (the extractor the model was trained with)"
    for name in (IVECTOR_EXTRACTOR, IVECTOR_CONF):
        if not (path / name).is_file():
            raise MissingFileError(f"{path / name}: missing from the model bundle, whose model takes online "
                                   f"i-vectors ({ivector_input.describe()}); {fix}")
    ivector_model = load_ivector_model(path / IVECTOR_EXTRACTOR, need_extractor=True)
    _check_extractor(ivector_model, path / IVECTOR_EXTRACTOR, ivector_input, path / "final.mdl", raw_dim, fix)
    opts = read_config(path / IVECTOR_CONF, OnlineIvectorExtractionConfig).check()
    if opts.ivector_period != ivector_input.period:
        raise InputError(f"{path / IVECTOR_CONF}: --ivector-period={opts.ivector_period} but the model was trained on "
                         f"i-vectors every {ivector_input.period} frames; {fix}")
    return ivector_model, opts


def _bundle_extractor(loaded, model_path, ivector_extractor, raw_dim):
    """For export: (extractor file, OnlineIvectorExtractionConfig) of a model with an i-vector input, else
    None; refuses a missing or wrong extractor, and an extractor for a model without i-vectors."""
    ivector_input = _model_ivector(loaded)
    if ivector_input is None:
        if ivector_extractor is not None:
            raise InputError(f"--ivector-extractor {ivector_extractor}: {model_path} was trained without i-vectors "
                             "(train-nnet2 --online-ivector-dir makes one that takes them); drop the option")
        return None
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig

    fix = (f"pass --ivector-extractor DIR, the extractor dir of the i-vectors it was trained on "
           f"({ivector_input.extractor_name()})")
    if ivector_extractor is None:
        recorded = Path(ivector_input.extractor) if ivector_input.extractor else None
        if recorded is None or not recorded.is_file():
            raise MissingFileError(f"{model_path}: takes online i-vectors ({ivector_input.describe()}) but its "
                                   f"extractor {ivector_input.extractor_name()} is not there; {fix}")
        ivector_extractor = recorded
    extractor_path = Path(ivector_extractor)
    if extractor_path.is_dir():
        extractor_path = extractor_path / "final.ie"
    if not extractor_path.is_file():
        raise MissingFileError(f"{extractor_path}: no i-vector extractor; {fix}")
    ivector_model = load_ivector_model(extractor_path, need_extractor=True)
    _check_extractor(ivector_model, extractor_path, ivector_input, model_path, raw_dim, fix)
    # extract-ivectors-online's defaults: the extractor's training values, at the model's period
    opts = OnlineIvectorExtractionConfig.of_extractor(ivector_model.options, ivector_period=ivector_input.period)
    return extractor_path, opts


def _raw_dim(mfcc_opts):
    return mfcc_opts.num_ceps


def _merge(opts, file_opts, overrides):
    """Bundle options, then non-default values of an extra config file, then explicit overrides."""
    from kaldilite.io.config import option_specs, options_to_config_lines, read_config
    from kaldilite.online.recognizer import OnlineDecodingOptions

    merged = {}
    for line in options_to_config_lines(opts):
        name, _, value = line[2:].partition("=")
        merged[name] = value
    if file_opts is not None:
        for line in options_to_config_lines(file_opts, only_changed=True):
            name, _, value = line[2:].partition("=")
            merged[name] = value
    known = {s.name for s in option_specs(OnlineDecodingOptions)}
    merged = {k: v for k, v in merged.items() if k in known}
    merged.update(overrides or {})
    return read_config(None, OnlineDecodingOptions, merged)


# ---------------------------------------------------------------------------------- export

def export_model(exp_dir, graph_dir, out_dir, *, mfcc_config=None, data_dir=None, online_config=None,
                 rejection=None, default_rejection=False, lang_dir=None, model=None, check_features=True,
                 ivector_extractor=None):
    """Write a bundle for decoding `graph_dir` with `exp_dir`'s model (see the module docstring).

    `mfcc_config`: the config the model's features were made with (required; a wrong one
    silently ruins accuracy, so with `data_dir` it is checked by recomputing one utterance's
    features and comparing with feats.scp). `data_dir`: training data whose cmvn.scp, summed,
    is the online-CMVN prior. `online_config`: decoder/endpoint options (default the
    repository's conf/online.conf). `rejection`: a rule JSON (default GRAPH/rejection.json; see
    `bundle_rejection_rule` for when the graph's rule is refused and when the default rule is
    used); the bundle's --cmvn-silence-weight is the one the rule's calibration decodes carried with
    (`calibrated_cmvn_carry`), whatever `online_config` says. `lang_dir`: where `words/fillers.txt` is when the
    graph dir lacks it.
    `ivector_extractor`: for a model with an online i-vector input, the extractor (dir or final.ie)
    it was trained with (default: the one the model records); refused unless its md5 is the model's
    extractor id. Returns the output path.
    """
    from kaldilite.decode.rejection import RULE_FILE
    from kaldilite.feat.options import MfccOptions
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.graph.provenance import check_graph_for_model
    from kaldilite.io.config import options_to_config_lines, read_config
    from kaldilite.online.recognizer import OnlineDecodingOptions
    from kaldilite.utils.atomic import atomic_open, atomic_path

    exp_dir, graph_dir, out_dir = Path(exp_dir), Path(graph_dir), Path(out_dir)
    model_path = Path(model) if model else exp_dir / "final.mdl"
    if not model_path.is_file():
        raise MissingFileError(f"{model_path}: no model; pass --model FILE (the model whose decodes the rule was "
                               "calibrated on) or train it first")
    if mfcc_config is None:
        raise InputError("export-model needs --mfcc-config: the feature config the model was trained with "
                         "(e.g. conf/mfcc.conf)")
    mfcc_opts = read_config(mfcc_config, MfccOptions)
    _refuse_speaker_adapted(model_path)
    loaded = load_scoring_model(model_path)
    _refuse_non_mfcc(loaded, model_path)
    pipeline = loaded.pipeline
    raw_dim = _raw_dim(mfcc_opts)
    if loaded.raw_feature_dim and loaded.raw_feature_dim != raw_dim:
        raise DimensionMismatchError(f"{mfcc_config}: makes {raw_dim}-dim features but {model_path} was trained on "
                                     f"{loaded.raw_feature_dim}-dim ones; pass the config make-mfcc used")
    check_graph_for_model(graph_dir, model_path, transition_model=loaded.transition_model)
    extractor = _bundle_extractor(loaded, model_path, ivector_extractor, raw_dim)
    graph = load_graph(graph_dir)
    for name in ("words.txt", "phones.txt", "phones/silence.csl"):
        if not (graph_dir / name).is_file():
            raise MissingFileError(f"{graph_dir / name}: missing from the graph dir; re-run `kaldilite mkgraph`")
    global_stats = None
    if pipeline.cmvn == "online":  # the model's own prior: what it was trained with
        global_stats = pipeline.online_cmvn_stats
    elif pipeline.cmvn != "none":
        if data_dir is None:
            raise InputError(f"{model_path} uses {pipeline.cmvn} CMVN: pass --data DIR (the training data dir; its "
                             "cmvn.scp summed is the online-CMVN prior, Kaldi's global_cmvn.stats)")
        from kaldilite.feat.pipeline import global_cmvn_stats

        global_stats = global_cmvn_stats(data_dir)
        if global_stats.shape != (2, raw_dim + 1):
            raise DimensionMismatchError(f"{Path(data_dir) / 'cmvn.scp'}: stats of dimension "
                                         f"{global_stats.shape[-1] - 1} "
                                         f"but {mfcc_config} makes {raw_dim}-dim features")
    if data_dir is not None and check_features:
        check_feature_config(data_dir, mfcc_opts, mfcc_config)
    online_opts = read_config(online_config or (DEFAULT_ONLINE_CONF if DEFAULT_ONLINE_CONF.is_file() else None),
                              OnlineDecodingOptions)
    cmvn_opts = pipeline.online_cmvn_opts()
    fillers_source = None
    for candidate in [graph_dir] + ([Path(lang_dir)] if lang_dir else []):
        if (candidate / "words" / "fillers.txt").is_file():
            fillers_source = candidate / "words" / "fillers.txt"
            break
    if fillers_source is None:
        log.warning("%s: no words/fillers.txt (nor in --lang); the bundle rejects only silence/garbage-free "
                    "results by confidence", graph_dir)
    has_fillers = fillers_source is not None and bool(fillers_source.read_text(encoding="utf-8").split())
    rule, rule_source = bundle_rejection_rule(exp_dir, graph_dir, rejection, default_rejection, has_fillers,
                                              model_path=model_path)
    carry = calibrated_cmvn_carry(rule, rule_source)
    if carry is not None:  # the threshold holds for decodes that carry as its calibration decodes did
        weight, carry_conf = carry
        if weight != online_opts.cmvn_silence_weight:
            log.info("export-model: --cmvn-silence-weight %g (%s) instead of the online config's %g", weight,
                     carry_conf, online_opts.cmvn_silence_weight)
        online_opts = dataclasses.replace(online_opts, cmvn_silence_weight=weight)
        trained = trained_cmvn_silence_weight(model_path, pipeline)
        if trained is not None and trained != weight:
            log.warning("%s was trained with the online-CMVN stats carried with silence frames weighted %g (train-nnet2 "
                        "--online-cmvn-silence-weight) but %s was calibrated on decodes carrying them weighted %g (%s), "
                        "which the bundle carries as its threshold needs; to decode as trained, re-decode and "
                        "re-calibrate with decode-commands --online-cmvn-silence-weight %g (the commands recipe's "
                        "online_cmvn_silence_weight) and export again", model_path, trained, rule_source, weight,
                        carry_conf, trained)

    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("conf", "phones", "words"):
        (out_dir / sub).mkdir(exist_ok=True)
    with atomic_path(out_dir / "final.mdl") as tmp:
        shutil.copyfile(model_path, tmp)
    graph.save(out_dir / "HCLG.npz")
    for name in ("words.txt", "phones.txt", "phones/silence.csl"):
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(graph_dir / name, tmp)
    with atomic_open(out_dir / "words" / "fillers.txt") as handle:
        if fillers_source is not None:
            handle.write(fillers_source.read_text(encoding="utf-8"))
    rule.save(out_dir / RULE_FILE)
    if global_stats is not None:
        from kaldilite.io.tables import write_matrix

        write_matrix(out_dir / "global_cmvn.stats", global_stats, binary=False)  # Kaldi's text form, every digit
    confs = [("mfcc.conf", mfcc_opts), ("online_cmvn.conf", cmvn_opts), ("online.conf", online_opts)]
    if extractor is not None:
        (out_dir / IVECTOR_EXTRACTOR).parent.mkdir(exist_ok=True)
        with atomic_path(out_dir / IVECTOR_EXTRACTOR) as tmp:
            shutil.copyfile(extractor[0], tmp)  # a byte copy: its md5 stays the model's extractor id
        confs.append((Path(IVECTOR_CONF).name, extractor[1]))
    for name, opts in confs:
        with atomic_open(out_dir / "conf" / name) as handle:
            if name == "online.conf" and carry is not None:
                handle.write(f"# --cmvn-silence-weight: the carry the rejection threshold was calibrated with "
                             f"({carry[1]}); with another it does not hold\n")
            handle.write("\n".join(options_to_config_lines(opts)) + "\n")
    info = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "model_type": loaded.model_type,
            "sample_rate": int(mfcc_opts.frame_opts.sample_frequency), "num_pdfs": int(loaded.scorer.num_pdfs),
            "graph_states": int(graph.num_states), "graph_arcs": int(graph.num_arcs),
            "from": {"model": str(model_path), "graph": str(graph_dir), "data": str(data_dir) if data_dir else None,
                     "mfcc_config": str(mfcc_config), "rejection": rule_source}}
    if extractor is not None:
        info["from"]["ivector_extractor"] = str(extractor[0])
    if carry is not None:  # conf/online.conf's --cmvn-silence-weight is the calibration's (ModelBundle.load checks)
        info["from"]["cmvn_carry"] = str(carry[1])
        info["from"]["cmvn_silence_weight"] = float(carry[0])  # (a hand edit of conf/online.conf is warned)
    with atomic_open(out_dir / "bundle.json") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")
    log.info("export-model: wrote %s (%s model, %d-state graph)", out_dir, loaded.model_type, graph.num_states)
    return out_dir


def _calibrated_system(rule):
    """The experiment dir whose decodes a rule's threshold was calibrated on (calibrate-rejection
    records its decode dir, EXP/decode_SET), or None when the rule does not say."""
    decode_dir = (rule.calibration or {}).get("decode_dir")
    return Path(decode_dir).parent if decode_dir else None


def calibrated_cmvn_carry(rule, rule_path):
    """(silence weight, record path) of the online-CMVN carry a rule's threshold was calibrated with: the
    --online-cmvn-silence-weight of DECODE_DIR/cmvn_carry.conf (decode-commands' record), DECODE_DIR being the
    decode dir calibrate-rejection records (as it was given, often relative to the recipe's work dir), found
    beside the rule's graph dir (EXP/graph_X/rejection.json next to EXP/decode_Y), else as recorded. None when
    `rule_path` is "default", the rule names no decode dir, or the decode recorded no carry (no online CMVN,
    or from before the record): the online config's weight then stays; a warning when the decode dir is not
    found, or when a set pooled with it (calibrate-rejection --also) recorded another weight."""
    from kaldilite.feat.cmvn import CMVN_CARRY_CONF, read_cmvn_carry

    calibration = rule.calibration or {}
    recorded = calibration.get("decode_dir")
    if not recorded or rule_path == "default":
        return None
    # the rule's experiment dir, kept relative when the rule was named so (bundle.json names the record as such);
    # lexically, as Path.parent, but a bare "rejection.json" (run in the graph dir) gives ".." and not "."
    experiment = Path(os.path.normpath(os.path.join(os.path.dirname(rule_path), os.pardir)))
    decode_dir = _calibration_decode_dir(recorded, experiment)
    if decode_dir is None:
        log.warning("%s: calibrated on %s, found neither beside the rule (in %s) nor from the current dir: the bundle "
                    "keeps the online config's --cmvn-silence-weight, which may not be the carry its threshold was "
                    "calibrated with; export from the dir calibrate-rejection ran in", rule_path, recorded, experiment)
        return None
    carry = read_cmvn_carry(decode_dir, f"re-decode into {decode_dir} with decode-commands and re-calibrate")
    if carry is None:
        return None
    for _, pooled in calibration.get("also") or ():
        other = _calibration_decode_dir(pooled, experiment)
        theirs = None if other is None else read_cmvn_carry(other, f"re-decode into {other} with decode-commands "
                                                                   "and re-calibrate")
        if theirs is not None and theirs[1] != carry[1]:
            log.warning("%s: calibrated on %s (online-CMVN silence weight %g) pooled with %s (weight %g): the bundle "
                        "carries %g, which holds for part of the pool only; re-decode both with one "
                        "--online-cmvn-silence-weight and re-calibrate", rule_path, decode_dir, carry[1], other,
                        theirs[1], carry[1])
    return carry[1], decode_dir / CMVN_CARRY_CONF


def _calibration_decode_dir(recorded, experiment):
    """A decode dir a rule's calibration records (`recorded`, EXP/decode_Y as calibrate-rejection was given it):
    the one beside the rule (`experiment`/decode_Y when `experiment` is named EXP), else `recorded` from the
    current dir; None when neither is a dir."""
    recorded = Path(recorded)
    beside = Path(os.path.abspath(experiment)).name == recorded.parent.name
    for decode_dir in ([experiment / recorded.name] if beside else []) + [recorded]:
        if decode_dir.is_dir():
            return decode_dir
    return None


def _is_experiments_model(model_path, exp_dir):
    """True when `model_path` is EXP/final.mdl itself (the same file, a link to it, or a byte copy): the
    model EXP's decodes, and so the rules calibrated on them, were made with. Also True when EXP holds
    no final.mdl: a dir of decodes only (run.sh's exp/<model>_online_cmvn, bench/rejection_slice.py's
    EXP/<setting>), whose model only export-model --model can name."""
    import filecmp

    default = Path(exp_dir) / "final.mdl"
    model_path = Path(model_path)
    if not default.is_file():
        return True
    return os.path.samefile(model_path, default) or filecmp.cmp(model_path, default, shallow=False)


def bundle_rejection_rule(exp_dir, graph_dir, rejection=None, default_rejection=False, has_fillers=True,
                          model_path=None):
    """The rejection rule a bundle decides with, and where it came from (a path or "default").

    A threshold only means something for the model whose scores it was calibrated on: each
    model's llr_total has its own scale, so another system's threshold can reject (or accept)
    nearly everything. Hence: `rejection` (a rule file the user names) is used as given, with a
    warning if it was calibrated on another system's decodes; else the graph's own
    GRAPH/rejection.json, refused when it was calibrated on another system than `exp_dir` (a DNN
    exported with its GMM's graph dir); a graph with filler/garbage words but no rule is refused
    too (its grammar was made for a calibrated threshold), unless `default_rejection` asks for the
    uncalibrated default rule. A graph without fillers gets the default rule: it has nothing to
    calibrate against. `model_path` (export-model --model) other than EXP/final.mdl, e.g. a SAT
    system's speaker-independent final.alimdl, is not the model whose decodes EXP's rules were
    calibrated on: the graph's rule is refused for it (--rejection FILE or --default-rejection). An EXP
    without final.mdl (its decodes only, e.g. the rule's calibration decodes of another dir's model)
    takes `model_path` as the model they were made with. All of that guesses from file names, for a rule
    calibrated on decodes that record no model (with a warning); a rule whose calibration decodes recorded
    their model and graph (decode-commands' decoded_with.json, calibration.decoded_with) is used, named or
    not, exactly when `model_path` and `graph_dir` have those digests, else refused (or the default rule
    with `default_rejection`).
    """
    from kaldilite.decode.rejection import RULE_FILE, RejectionRule
    from kaldilite.graph.provenance import DECODE_RECORD_FILE, rule_decoded_with_mismatch

    path = Path(rejection) if rejection is not None else Path(graph_dir) / RULE_FILE
    if rejection is not None or path.is_file():
        rule = RejectionRule.load(path)
        refuse_offline_rule(rule, path)
        recorded = (rule.calibration or {}).get("decoded_with")
        if recorded is not None and model_path is not None:  # the decodes named their model and graph: compared
            mismatch = rule_decoded_with_mismatch(recorded, model_path, graph_dir)
            if mismatch is None:
                return rule, str(path)
            if default_rejection:
                log.warning("%s: %s; the bundle uses the uncalibrated default rule as --default-rejection asks", path,
                            mismatch)
                return RejectionRule(), "default"
            raise InputError(f"{path}: {mismatch}; export that model and graph, or decode with these "
                             f"(decode-commands --model {model_path}) and re-calibrate, or pass --default-rejection "
                             "for the uncalibrated default")
        if rule.calibration and model_path is not None:
            log.warning("%s: its calibration decodes record no model (decoded before decode-commands wrote %s): "
                        "--model %s is not checked against them; re-decode and re-calibrate to record it", path,
                        DECODE_RECORD_FILE, model_path)
        if rejection is None and model_path is not None and not _is_experiments_model(model_path, exp_dir):
            if default_rejection:
                log.warning("%s: calibrated on %s/final.mdl's decodes, not %s's; the bundle uses the uncalibrated "
                            "default rule as --default-rejection asks", path, exp_dir, model_path)
                return RejectionRule(), "default"
            raise InputError(f"{path}: its threshold was calibrated on decodes of {Path(exp_dir) / 'final.mdl'}, "
                             f"not of --model {model_path}; pass --rejection FILE calibrated on that model's "
                             f"decodes, or --default-rejection for the uncalibrated default")
        system = _calibrated_system(rule)
        if system is not None and system.name and system.name != Path(exp_dir).resolve().name:
            if rejection is not None:  # named by the user: their choice
                log.warning("%s: calibrated on %s's decodes, used for %s as --rejection asks", rejection, system,
                            exp_dir)
            else:
                raise InputError(f"{path}: its threshold was calibrated on {system}'s decodes, not {exp_dir}'s; "
                                 f"export with {exp_dir}'s own graph dir ({Path(exp_dir) / Path(graph_dir).name}, "
                                 f"whose rejection.json calibrate-rejection writes) or pass --rejection FILE")
        return rule, str(rejection if rejection is not None else path)
    default = RejectionRule()
    if has_fillers and not default_rejection:
        raise MissingFileError(f"{path}: no calibrated rejection rule for this filler/garbage graph; run "
                               f"`kaldilite calibrate-rejection ... {graph_dir}` (the commands recipe's stage 10 does), "
                               f"pass --rejection FILE, or --default-rejection for the uncalibrated default "
                               f"({default.score} < {default.threshold:g} rejects)")
    log.warning("%s: no rejection rule; the bundle uses the uncalibrated default (%s < %g rejects)", path,
                default.score, default.threshold)
    return default, "default"


def check_feature_config(data_dir, mfcc_opts, mfcc_config, tolerance=0.05):
    """Recompute the first utterance of DATA/feats.scp from its audio with `mfcc_opts` and compare.

    Catches the silent failure of exporting with the wrong --mfcc-config (e.g. 16 kHz defaults
    for an 8 kHz model). Dither makes features differ slightly, hence a relative tolerance.
    """
    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import read_matrices

    data = DataDir.load(data_dir)
    if data.feats_scp is None or data.wav_scp is None or data.segments is not None:
        return
    utt, feats = next(iter(read_matrices(Path(data_dir) / "feats.scp")), (None, None))
    if utt is None or utt not in data.wav_scp:
        return
    wave = read_audio(data.wav_scp[utt])
    from kaldilite.io.audio import audio_info

    rate = audio_info(data.wav_scp[utt])[0]
    where = f"{mfcc_config} vs {Path(data_dir) / 'feats.scp'} ({utt})"
    if rate != int(mfcc_opts.frame_opts.sample_frequency):
        raise InputError(f"{where}: the audio is {rate} Hz but the config says --sample-frequency="
                         f"{mfcc_opts.frame_opts.sample_frequency:g}; pass the config make-mfcc used")
    ours = compute_mfcc(wave, mfcc_opts)
    if ours.shape != feats.shape:
        raise InputError(f"{where}: features of shape {ours.shape} but feats.scp has {feats.shape}; pass the config "
                         "make-mfcc used")
    error = np.abs(ours - feats).mean() / max(np.abs(feats).mean(), 1e-9)
    if error > tolerance:
        raise InputError(f"{where}: recomputed features differ by {100 * error:.0f}% from feats.scp; pass the config "
                         "make-mfcc used")


__all__ = ["ModelBundle", "LoadedModel", "GmmScorer", "export_model", "bundle_rejection_rule", "register_model_type",
           "calibrated_cmvn_carry", "trained_cmvn_silence_weight", "refuse_offline_rule",
           "load_scoring_model", "check_feature_config",
           "BUNDLE_FORMAT"]
