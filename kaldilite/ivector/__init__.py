"""i-vector layer: the diagonal UBM, the i-vector extractor (training and estimation), online and offline extraction.

Follows Kaldi's src/ivector and src/online2/online-ivector-feature (steps/online/nnet2/
train_diag_ubm.sh, train_ivector_extractor.sh, extract_ivectors_online.sh). Sits between
gmm/transform and nnet (it uses kaldilite.gmm's diagonal GMM for the UBM and kaldilite.feat's
pipeline for its input features; an nnet2 DNN takes them as extra input: train-nnet2 --online-ivector-dir,
reading extract-ivectors-online's dirs through `ivector_dir`).
The names below are imported from their modules on first use (PEP 562).
"""

from kaldilite.utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ivector_dir": ["OnlineIvectorDir", "extractor_id", "ivectors_of_frames", "row_of_frame"],
    "extractor": ["IvectorExtractor", "OnlineIvectorStats", "TrainingStatistics", "em_iteration", "train_extractor"],
    "model": ["IvectorModel", "load_ivector_model", "save_ivector_model"],
    "online": ["OnlineIvectorAdaptationState", "OnlineIvectorExtractionConfig", "OnlineIvectorFeature",
               "extract_ivectors_offline", "extract_ivectors_online"],
    "ubm": ["gselect_posteriors", "train_diag_ubm"],
})
