"""Run kaldi-native-fbank (the test-only reference for Kaldi's feature extraction) with our options."""

import numpy as np
import pytest

knf = pytest.importorskip("kaldi_native_fbank", reason="kaldi-native-fbank (test peer) not installed")


def _copy_frame_and_mel(ours, theirs):
    f, k = ours.frame_opts, theirs.frame_opts
    k.samp_freq = f.sample_frequency
    k.frame_shift_ms = f.frame_shift
    k.frame_length_ms = f.frame_length
    k.dither = f.dither
    k.preemph_coeff = f.preemphasis_coefficient
    k.remove_dc_offset = f.remove_dc_offset
    k.window_type = f.window_type
    k.round_to_power_of_two = f.round_to_power_of_two
    k.blackman_coeff = f.blackman_coeff
    k.snip_edges = f.snip_edges
    m, km = ours.mel_opts, theirs.mel_opts
    km.num_bins = m.num_mel_bins
    km.low_freq = m.low_freq
    km.high_freq = m.high_freq


def knf_mfcc(waveform, opts):
    theirs = knf.MfccOptions()
    _copy_frame_and_mel(opts, theirs)
    for name in ("num_ceps", "use_energy", "energy_floor", "raw_energy", "cepstral_lifter", "htk_compat"):
        setattr(theirs, name, getattr(opts, name))
    return _run(knf.OnlineMfcc(theirs), waveform, opts.frame_opts.sample_frequency)


def knf_fbank(waveform, opts):
    theirs = knf.FbankOptions()
    _copy_frame_and_mel(opts, theirs)
    for name in ("use_energy", "energy_floor", "raw_energy", "htk_compat", "use_log_fbank", "use_power"):
        setattr(theirs, name, getattr(opts, name))
    return _run(knf.OnlineFbank(theirs), waveform, opts.frame_opts.sample_frequency)


def _run(extractor, waveform, rate):
    extractor.accept_waveform(rate, np.asarray(waveform, dtype=np.float32))
    extractor.input_finished()
    if extractor.num_frames_ready == 0:
        return np.zeros((0, extractor.dim), dtype=np.float32)
    return np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)])
