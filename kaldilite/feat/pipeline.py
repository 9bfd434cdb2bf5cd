"""What an acoustic model expects on its input, and how to make it from a data dir's features.

Kaldi scripts rebuild the model's input with a shell pipeline such as
`apply-cmvn --utt2spk=ark:utt2spk scp:cmvn.scp scp:feats.scp ark:- | add-deltas ark:- ark:-`
(train_deltas.sh) or `... | splice-feats --left-context=3 --right-context=3 ark:- ark:- |
transform-feats final.mat ark:- ark:-` (train_lda_mllt.sh), each script spelling it again.
Here a model stores one `FeaturePipeline` (via `to_dict`) and every consumer calls
`load_features(data_dir, pipeline)` or `pipeline.apply(feats, cmvn_stats)`: the steps run in
Kaldi's order CMVN -> deltas -> splice -> transform (online CMVN only through `load_features`
or the stream: it is a function of the speaker's earlier utterances, not of one).

cmvn 'online' is the front end of Kaldi's online2 models (steps/online/nnet2/prepare_online_decoding.sh
keeps global_cmvn.stats and online_cmvn.conf beside the model; the nnet2 online recipes train on
`apply-cmvn-online` output): the pipeline holds the global stats and the OnlineCmvn options, and a
data dir's features are normalized by `apply_cmvn_online` per speaker, its utterances one after the
other as the streaming recognizer normalizes them (in spk2utt order, or a seeded random one, with
per-frame carry weights: `load_features`).
"""

import dataclasses
from pathlib import Path

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.feat.cmvn import apply_cmvn, cmvn_stats
from kaldilite.feat.functions import add_deltas, splice_frames, transform_features

CMVN_MODES = ("speaker", "utterance", "online", "none")


@dataclasses.dataclass(eq=False)
class FeaturePipeline:
    """Feature post-processing recorded in a model.

    cmvn: 'speaker' (stats from cmvn.scp, keyed by speaker via utt2spk), 'utterance' (stats of
    the utterance itself), 'online' (Kaldi's OnlineCmvn from the prior `online_cmvn_stats`, the
    (2, D+1) global stats, with the OnlineCmvnOptions fields `online_cmvn_options`, a dict whose
    norm_vars is `norm_vars`) or 'none'; norm_vars: also normalize variance; delta_order /
    delta_window: add-deltas (order 0 = none); splice_left / splice_right: splice-feats
    context; transform: optional d x D or d x (D+1) matrix applied last (LDA, LDA+MLLT).
    """

    cmvn: str = "speaker"
    norm_vars: bool = False
    delta_order: int = 0
    delta_window: int = 2
    splice_left: int = 0
    splice_right: int = 0
    transform: np.ndarray | None = None
    online_cmvn_stats: np.ndarray | None = None
    online_cmvn_options: dict | None = None

    def __post_init__(self):
        if self.cmvn not in CMVN_MODES:
            raise InputError(f"feature pipeline: cmvn must be one of {', '.join(CMVN_MODES)}, got {self.cmvn!r}")
        if self.norm_vars and self.cmvn == "none":
            raise InputError("feature pipeline: norm_vars needs cmvn 'speaker' or 'utterance'")
        if self.delta_order < 0 or self.delta_window < 1 or self.splice_left < 0 or self.splice_right < 0:
            raise InputError(f"feature pipeline: bad context (delta order {self.delta_order}, window "
                             f"{self.delta_window}, splice {self.splice_left}/{self.splice_right})")
        if self.transform is not None:
            self.transform = np.array(self.transform, dtype=np.float64)
            if self.transform.ndim != 2:
                raise InputError(f"feature pipeline: transform must be a matrix, got shape {self.transform.shape}")
        if (self.cmvn == "online") != (self.online_cmvn_stats is not None):
            raise InputError("feature pipeline: online_cmvn_stats (the global CMVN stats) go with cmvn 'online' "
                             f"and only with it (cmvn {self.cmvn!r})")
        if self.online_cmvn_stats is not None:
            self.online_cmvn_stats = np.array(self.online_cmvn_stats, dtype=np.float64)
            if self.online_cmvn_stats.ndim != 2 or self.online_cmvn_stats.shape[0] != 2:
                raise InputError("feature pipeline: online_cmvn_stats must be a (2, dim+1) matrix, got shape "
                                 f"{self.online_cmvn_stats.shape}")
            self.online_cmvn_opts()  # checks the options

    def online_cmvn_opts(self, opts=None):
        """The OnlineCmvnOptions this pipeline's CMVN runs with online (the stream, apply_cmvn_online):
        `opts`, by default cmvn 'online''s own (OnlineCmvnOptions() for the other modes), with
        norm_vars always the pipeline's."""
        from kaldilite.feat.cmvn import OnlineCmvnOptions

        if opts is not None or self.cmvn != "online":
            opts = OnlineCmvnOptions() if opts is None else opts
            return opts if opts.norm_vars == self.norm_vars else dataclasses.replace(opts, norm_vars=self.norm_vars)
        fields = {f.name for f in dataclasses.fields(OnlineCmvnOptions)}
        given = dict(self.online_cmvn_options or {})
        unknown = set(given) - fields
        if unknown:
            raise InputError(f"feature pipeline: unknown online CMVN options {sorted(unknown)}")
        opts = OnlineCmvnOptions(**{**given, "norm_vars": self.norm_vars})
        opts.check()
        return opts

    def __eq__(self, other):
        if not isinstance(other, FeaturePipeline):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def spliced_dim(self, input_dim):
        """Dimension after CMVN, deltas and splicing: what a transform must accept."""
        return input_dim * (self.delta_order + 1) * (self.splice_left + 1 + self.splice_right)

    def output_dim(self, input_dim):
        """Dimension of the features this pipeline produces from `input_dim`-dimensional input."""
        dim = self.spliced_dim(input_dim)
        if self.transform is None:
            return dim
        if self.transform.shape[1] not in (dim, dim + 1):
            raise DimensionMismatchError(
                f"feature pipeline: the {self.transform.shape[0]} x {self.transform.shape[1]} transform takes "
                f"{self.transform.shape[1]}-dim input ({self.transform.shape[1] - 1}-dim if affine) but "
                f"{input_dim}-dim features give {dim} after deltas/splicing; were the features made with other "
                "options (e.g. --num-ceps)?")
        return self.transform.shape[0]

    def with_transform(self, matrix):
        """A copy with `matrix` as its transform (e.g. after estimating LDA on this pipeline's output)."""
        return dataclasses.replace(self, transform=None if matrix is None else np.array(matrix, dtype=np.float64))

    def without_cmvn(self):
        """A copy without the CMVN step: the steps after it, for features normalized elsewhere (online
        CMVN, which runs per speaker over a stream of utterances)."""
        return dataclasses.replace(self, cmvn="none", norm_vars=False, online_cmvn_stats=None,
                                   online_cmvn_options=None)

    def apply(self, feats, speaker_stats=None, where="features"):
        """Run the pipeline on one utterance's raw (T, D) features; `speaker_stats` for 'speaker' mode.

        cmvn 'online' is refused: its normalization of an utterance depends on the speaker's earlier
        utterances (as training and the live recognizer carried them), which one utterance cannot
        know. `load_features` runs it per speaker (`apply_cmvn_online`), `OnlineFeaturePipeline` on a
        stream; `without_cmvn().apply` takes the normalized frames from there."""
        feats = np.asarray(feats)
        if self.cmvn == "speaker":
            if speaker_stats is None:
                raise InputError(f"{where}: this pipeline needs per-speaker CMVN stats (cmvn.scp)")
            feats = apply_cmvn(feats, speaker_stats, self.norm_vars, where=where)
        elif self.cmvn == "utterance":
            feats = apply_cmvn(feats, cmvn_stats(feats), self.norm_vars, where=where)
        elif self.cmvn == "online":
            raise InputError(f"{where}: the model's online CMVN carries stats across a speaker's utterances, so "
                             "one utterance cannot be normalized alone; read a data dir with load_features (per "
                             "speaker, spk2utt order) or stream it (OnlineFeaturePipeline)")
        if self.delta_order > 0:
            feats = add_deltas(feats, self.delta_order, self.delta_window)
        if self.splice_left or self.splice_right:
            feats = splice_frames(feats, self.splice_left, self.splice_right)
        if self.transform is not None:
            feats = transform_features(feats, self.transform, where=where)
        return np.asarray(feats, dtype=np.float32)

    def _description(self, matrix):
        """The JSON-ready fields, each matrix (transform, online-CMVN stats) as `matrix(field, value)`
        gives it; the online-CMVN fields only when cmvn is 'online', so older pipelines' dicts are
        unchanged."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("online_cmvn_")}
        data["transform"] = None if self.transform is None else matrix("transform", self.transform)
        if self.cmvn == "online":
            data["online_cmvn_stats"] = matrix("online_cmvn_stats", self.online_cmvn_stats)
            data["online_cmvn_options"] = None if self.online_cmvn_options is None else dict(self.online_cmvn_options)
        return data

    def to_dict(self):
        """JSON-ready description, the matrices as nested lists of floats (exact in JSON)."""
        return self._description(lambda field, value: value.tolist())

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"feature pipeline: unknown fields {sorted(unknown)} (model written by a newer kaldilite?)")
        if isinstance(data.get("transform"), dict) or isinstance(data.get("online_cmvn_stats"), dict):
            raise InputError("feature pipeline: a matrix is stored as an array of the model file; read the "
                             "pipeline with from_header(header, arrays)")
        return cls(**data)

    def to_header(self, prefix):
        """For a model file: (JSON-ready dict naming each matrix's array and shape, {array name:
        matrix}); the matrices (transform, online-CMVN stats) go into the file as binary arrays,
        not as megabytes of JSON."""
        arrays = {}

        def array_reference(field, value):
            arrays[prefix + field] = value
            return {"array": prefix + field, "shape": list(value.shape)}

        return self._description(array_reference), arrays

    @classmethod
    def from_header(cls, data, arrays):
        """The inverse of `to_header`, given the model file's arrays; a dict with the transform as
        nested lists (model files before the arrays) is read as `from_dict` reads it."""
        data = dict(data)
        for field in ("transform", "online_cmvn_stats"):
            stored = data.get(field)
            if not isinstance(stored, dict):
                continue
            matrix = arrays.get(stored.get("array"))
            if matrix is None or list(matrix.shape) != list(stored.get("shape", ())):
                raise InputError(f"feature pipeline: {field} array {stored.get('array')!r} of shape "
                                 f"{stored.get('shape')} missing or of another shape")
            data[field] = matrix
        return cls.from_dict(data)


def feature_config_hint(raw_dim, feature_type="mfcc"):
    """Which feature config makes `raw_dim`-dim `feature_type` features in kaldilite's recipes: the
    fix to name when a model meets features of another dimension."""
    known = {("mfcc", 13): "the recipes' conf/mfcc.conf: 13 cepstra, the GMMs' features",
             ("mfcc", 40): "the commands recipe's conf/mfcc_hires.conf: 40 cepstra, data/<set>_hires"}
    found = known.get((str(feature_type).lower(), int(raw_dim)))
    return f"e.g. {found}" if found else f"a config giving {raw_dim} dimensions"


def raw_feature_dim_of(data_dir):
    """Dimension of the first matrix in DATA/feats.scp (feat-to-dim)."""
    import os

    from kaldilite.io.tables import read_matrices

    scp = os.path.join(os.fspath(data_dir), "feats.scp")
    if not os.path.exists(scp):
        raise MissingFileError(f"{scp}: no features; run make-mfcc and compute-cmvn-stats on {data_dir} first")
    for _, mat in read_matrices(scp):
        return mat.shape[1]
    raise InputError(f"{scp}: empty; re-run make-mfcc")


def feature_type_of(data_dir):
    """The kind of features in DATA/feats.scp ('mfcc', 'fbank', ...) as make-mfcc / make-fbank (and
    Kaldi's make_mfcc.sh / make_fbank.sh) name their archives, raw_<kind>_<name>.<job>.ark; None when
    the archive's name does not say (features made some other way), or there is no feats.scp (the
    feature-dimension check, `raw_feature_dim_of`, says that in one line)."""
    import os
    import re

    scp = os.path.join(os.fspath(data_dir), "feats.scp")
    if not os.path.isfile(scp):
        return None
    with open(scp, encoding="utf-8") as handle:
        first = handle.readline().split(maxsplit=1)
    found = re.match(r"raw_([a-z]+)_", os.path.basename(first[1])) if len(first) == 2 else None
    return found.group(1) if found else None


def recorded_feature_type(data_dir, given=""):
    """The name of DATA's raw features a model records: what its archives say (`feature_type_of`), or
    `given` (a trainer's --feat-type) when they say nothing or `given` names the same kind more closely
    ('mfcc_hires' for raw_mfcc_* archives), else 'features'. A `given` of another kind than the
    archives' is a one-line error: the model would name the wrong features in its messages."""
    found = feature_type_of(data_dir)
    if given and found and not str(given).startswith(found):
        import os

        raise InputError(f"--feat-type {given}: {os.path.join(os.fspath(data_dir), 'feats.scp')} holds {found} "
                         f"features (its archives are make-{found}'s); drop --feat-type or give {found}")
    return given or found or "features"


def raw_feature_record(data_dir):
    """What a model records about the raw features it was trained on (its header's `extra`): their
    dimension and, when the archives say, their kind; the feature-dimension checks name both."""
    record = {"raw_feature_dim": raw_feature_dim_of(data_dir)}
    feature_type = feature_type_of(data_dir)
    if feature_type:
        record["feature_type"] = feature_type
    return record


def check_raw_feature_dim(model_path, data_dir, expected_dim, expected_features, feature_type="mfcc"):
    """Refuse, before any job, a data dir whose feats.scp does not have the raw dimension the model
    was trained on (13-dim MFCC given to the hires DNN, hires given to a GMM), naming both dimensions
    and the config that makes the right ones. `expected_dim` None (an older model): not checked."""
    if expected_dim is None:
        return
    actual = raw_feature_dim_of(data_dir)
    if actual != expected_dim:
        raise DimensionMismatchError(
            f"{model_path} expects {expected_dim}-dim {feature_type} ({expected_features}) but {data_dir}/feats.scp "
            f"holds {actual}-dim features; use a data dir made with the features the model was trained on "
            f"({feature_config_hint(expected_dim, feature_type)}) or retrain")


def load_features(data_dir, pipeline, utterances=None, online_cmvn=None, online_cmvn_history=None,
                  online_cmvn_order_seed=None, online_cmvn_weights=None):
    """Iterate (utt, float32 features) for a data dir: feats.scp through `pipeline`.

    Per-speaker CMVN reads DATA/cmvn.scp keyed by speaker through DATA/utt2spk (as
    `apply-cmvn --utt2spk`). `utterances` (optional iterable) restricts the output to those ids;
    order is feats.scp's.

    A pipeline with cmvn 'online' normalizes as below with its own stats and options.
    `online_cmvn`: (global_stats, OnlineCmvnOptions or None) replaces the pipeline's CMVN step
    ('speaker', 'utterance' or 'online') with the online decoder's (`apply_cmvn_online` with DATA/spk2utt:
    per speaker, utterances in spk2utt order, stats carried from one to the next; norm_vars
    follows the pipeline, as in `OnlineFeaturePipeline`); order is then spk2utt's (or the one drawn
    with `online_cmvn_order_seed`).
    `online_cmvn_history`: another data dir holding DATA's utterances among others (e.g. dev for
    a subset of it): the stats are carried through ITS spk2utt, so that DATA's utterances are
    normalized exactly as in that dir; only DATA's are returned.
    `online_cmvn_order_seed`: each speaker's utterances carried in a random order drawn from this seed
    and the speaker's name (`speaker_orders`; None: spk2utt's order), the order they are returned in.
    `online_cmvn_weights`: the per-frame carry weights of `apply_cmvn_online` (a mapping utt -> vector,
    or a callable asked once the utterance has been consumed; None: every frame 1).
    """
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import read_matrices, read_matrix_dict

    data = DataDir.load(data_dir)
    feats_scp = data.path / "feats.scp"
    if data.feats_scp is None:
        raise MissingFileError(f"{feats_scp}: no features; run make-mfcc (or make-fbank) on {data.path} first")
    wanted = None if utterances is None else set(utterances)
    if online_cmvn is None and pipeline.cmvn == "online":
        online_cmvn = (pipeline.online_cmvn_stats, pipeline.online_cmvn_opts())
    if online_cmvn is not None and pipeline.cmvn != "none":
        yield from _load_features_online_cmvn(data, pipeline, wanted, *online_cmvn, history=online_cmvn_history,
                                              order_seed=online_cmvn_order_seed, weights=online_cmvn_weights)
        return
    stats_by_speaker = utt2spk = None
    if pipeline.cmvn == "speaker":
        cmvn_scp = data.path / "cmvn.scp"
        if data.cmvn_scp is None:
            raise MissingFileError(f"{cmvn_scp}: no CMVN stats; run compute-cmvn-stats on {data.path} first")
        if data.utt2spk is None:
            raise MissingFileError(f"{data.path / 'utt2spk'}: needed to find each utterance's speaker CMVN stats")
        stats_by_speaker = read_matrix_dict(cmvn_scp)
        utt2spk = data.utt2spk
    for utt, feats in read_matrices(feats_scp):
        if wanted is not None and utt not in wanted:
            continue
        stats = None
        if stats_by_speaker is not None:
            speaker = utt2spk.get(utt)
            if speaker is None:
                raise InputError(f"{data.path / 'utt2spk'}: utterance {utt} of feats.scp has no speaker; "
                                 "run fix-data-dir")
            stats = stats_by_speaker.get(speaker)
            if stats is None:
                raise InputError(f"{data.path / 'cmvn.scp'}: no stats for speaker {speaker} (utterance {utt}); "
                                 "re-run compute-cmvn-stats")
        yield utt, pipeline.apply(feats, stats, where=f"{feats_scp} ({utt})")


def _load_features_online_cmvn(data, pipeline, wanted, global_stats, opts, history=None, order_seed=None,
                               weights=None):
    from kaldilite.feat.cmvn import OnlineCmvnOptions, apply_cmvn_online, speaker_orders
    from kaldilite.io.datadir import DataDir, utt2spk_to_spk2utt
    from kaldilite.io.tables import read_matrix

    if data.utt2spk is None:
        raise MissingFileError(f"{data.path / 'utt2spk'}: online CMVN carries stats within each speaker; "
                               "the data dir needs utt2spk (and spk2utt)")
    wanted = set(data.utt2spk) if wanted is None else wanted & set(data.utt2spk)
    source = data if history is None else DataDir.load(history)
    if source.utt2spk is None or source.feats_scp is None:
        raise MissingFileError(f"{source.path}: online CMVN history needs utt2spk and feats.scp")
    missing = sorted(u for u in wanted if u not in source.feats_scp or source.utt2spk.get(u) != data.utt2spk[u])
    if missing:
        raise InputError(f"{source.path}: utterance {missing[0]} of {data.path} is not there with the same speaker "
                         f"({len(missing)} in all); the online-CMVN history must hold every utterance decoded")
    spk2utt = source.spk2utt if source.spk2utt is not None else utt2spk_to_spk2utt(source.utt2spk)
    speakers = {data.utt2spk[u] for u in wanted}
    # a speaker's utterances are all normalized (their stats carry), only the wanted ones returned
    spk2utt = speaker_orders({spk: utts if history is not None else [u for u in utts if u in wanted]
                              for spk, utts in spk2utt.items() if spk in speakers}, order_seed)
    opts = pipeline.online_cmvn_opts(OnlineCmvnOptions() if opts is None else opts)
    feats_scp = source.path / "feats.scp"
    raw = {u: read_matrix(source.feats_scp[u]) for utts in spk2utt.values() for u in utts if u in source.feats_scp}
    offline_steps = pipeline.without_cmvn()
    for utt, feats in apply_cmvn_online(raw, global_stats, opts, spk2utt, where=f"{feats_scp}: online CMVN",
                                        weights=weights):
        if utt in wanted:
            yield utt, offline_steps.apply(feats, where=f"{feats_scp} ({utt})")


def global_cmvn_stats(data_dir):
    """Sum of all speakers' stats in DATA/cmvn.scp (`matrix-sum scp:cmvn.scp`): the usual prior
    (`OnlineCmvnState(global_stats=...)`) for online CMVN."""
    from kaldilite.io.tables import sum_matrices

    cmvn_scp = Path(data_dir) / "cmvn.scp"
    if not cmvn_scp.exists():
        raise MissingFileError(f"{cmvn_scp}: no CMVN stats; run compute-cmvn-stats on {data_dir} first")
    total, _ = sum_matrices(cmvn_scp, f"re-run compute-cmvn-stats on {data_dir}")
    return total
