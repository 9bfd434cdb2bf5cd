"""The commands recipe's DNN features (recipes/commands/conf/mfcc_hires.conf) against kaldi-native-fbank.

The recipe's nnet2 stage reads 40-dim "hires" MFCC (Kaldi's conf/mfcc_hires.conf: 40 cepstra of 40
mel bins, 20 Hz .. Nyquist - 400 Hz) while its alignments come from the GMMs' 13-dim MFCC of
conf/mfcc.conf: the two configs must cut the same frames, and the hires options must mean what they
mean to Kaldi (knf, Kaldi's feature code, computes the same features from the same options).
"""

from pathlib import Path

import numpy as np
import soundfile

from knf_reference import knf_mfcc

from kaldilite.feat import MfccOptions, compute_mfcc
from kaldilite.io.config import read_config

CONF = Path(__file__).resolve().parents[2] / "recipes" / "commands" / "conf"


def _clips(speech_commands_dir):
    paths = sorted(speech_commands_dir.glob("*/*_nohash_0.wav"))[:3]
    assert paths, f"no clips under {speech_commands_dir}"
    return paths


def test_hires_conf_matches_kaldi_native_fbank_and_frames_match_the_gmm_features(speech_commands_dir):
    hires = read_config(CONF / "mfcc_hires.conf", MfccOptions)
    gmm = read_config(CONF / "mfcc.conf", MfccOptions)
    # Kaldi's egs/*/s5/conf/mfcc_hires.conf: 40 cepstra of 40 bins, 20 Hz .. Nyquist - 400 Hz, no energy
    assert (hires.num_ceps, hires.mel_opts.num_mel_bins) == (40, 40)
    assert (hires.mel_opts.low_freq, hires.mel_opts.high_freq, hires.use_energy) == (20.0, -400.0, False)
    for opts in (hires, gmm):
        opts.frame_opts.dither = 0.0  # deterministic comparison
    for path in _clips(speech_commands_dir):
        samples, rate = soundfile.read(str(path), dtype="int16")
        waveform = samples.astype(np.float32)
        ours, theirs = compute_mfcc(waveform, hires), knf_mfcc(waveform, hires)
        assert ours.shape == theirs.shape and ours.shape[1] == 40, path
        # knf computes in float32 (off by up to ~1e-3 on some clips: test_feat_precision.py); measured here <= 4e-4
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-3, err_msg=str(path))
        # the GMM alignments (13-dim features) index the same frames
        assert compute_mfcc(waveform, gmm).shape == (ours.shape[0], 13), path
