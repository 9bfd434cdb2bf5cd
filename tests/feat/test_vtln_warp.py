"""compute-mfcc-feats / compute-fbank-feats --vtln-warp (Kaldi's VTLN filterbank), against independent answers:

- the warped mel filterbank equals kaldi-native-fbank's MelBanks(..., vtln_warp_factor) matrix (a port
  of Kaldi's src/feat/mel-computations.cc) for warps below and above 1, at 8 and 16 kHz;
- through the verb, a pure tone's log-mel peak moves to the bin a hand computation predicts: Kaldi
  moves bin m's centre c_m to F(c_m) = c_m / alpha, so the tone f peaks in the bin with c_m nearest
  alpha x f (the mel centres computed here from the mel formula);
- bad inflection points and warp factors are refused in one line.
"""

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.feat.options import FrameExtractionOptions, MelBanksOptions
from kaldilite.feat.spectral import mel_banks


@pytest.mark.parametrize("rate,bins,high,warp", [(16000, 40, -400, 0.9), (16000, 40, -400, 1.13),
                                                  (8000, 23, 0, 0.85), (16000, 23, 0, 1.2)])
def test_warped_filterbank_is_kaldi_native_fbanks(rate, bins, high, warp):
    knf = pytest.importorskip("kaldi_native_fbank")
    knf_mel = knf.MelBanksOptions()
    knf_mel.num_bins, knf_mel.low_freq, knf_mel.high_freq = bins, 20, high
    knf_frame = knf.FrameExtractionOptions()
    knf_frame.samp_freq = rate
    expected = np.array(knf.MelBanks(knf_mel, knf_frame, warp).get_matrix())
    ours = mel_banks(MelBanksOptions(num_mel_bins=bins, low_freq=20, high_freq=high, vtln_warp=warp),
                     FrameExtractionOptions(sample_frequency=rate))
    assert expected.shape == ours.T.shape  # FFT bins 0 .. N/2, the Nyquist one of weight 0
    np.testing.assert_allclose(ours.T, expected, atol=5e-5)
    unwarped = mel_banks(MelBanksOptions(num_mel_bins=bins, low_freq=20, high_freq=high),
                         FrameExtractionOptions(sample_frequency=rate))
    assert np.abs(ours - unwarped).max() > 0.5  # the warp really moved the bins


def test_compute_fbank_feats_vtln_warp_moves_a_tone_to_the_predicted_bin(tmp_path):
    from kaldilite.cli import cli
    from kaldilite.io.tables import read_matrices

    rate, tone = 16000, 1000.0
    samples = (8000 * np.sin(2 * np.pi * tone * np.arange(rate // 2) / rate)).astype(np.int16)
    soundfile.write(tmp_path / "tone.wav", samples, rate)
    (tmp_path / "wav.scp").write_text(f"tone {tmp_path / 'tone.wav'}\n")
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    delta = (mel(7600.0) - mel(20.0)) / 41
    centers_mel = mel(20.0) + delta * np.arange(1, 41)
    peaks = {}
    for warp in (0.85, 1.0, 1.15):
        out = tmp_path / f"w{warp}.ark"
        result = CliRunner().invoke(cli, ["compute-fbank-feats", "--num-mel-bins=40", "--high-freq=-400", "--dither=0",
                                          f"--vtln-warp={warp}", str(tmp_path / "wav.scp"), f"ark:{out}"])
        assert result.exit_code == 0, result.output
        feats = dict(read_matrices(f"ark:{out}"))["tone"]
        peaks[warp] = int(np.bincount(np.argmax(feats, axis=1)).argmax())
        assert peaks[warp] == int(np.argmin(np.abs(centers_mel - mel(warp * tone))))
    assert peaks[0.85] < peaks[1.0] < peaks[1.15]


@pytest.mark.parametrize("kwargs,message", [
    ({"vtln_warp": 0.0}, "--vtln-warp must be positive"),
    ({"vtln_warp": 0.9, "vtln_low": 10.0}, "must lie strictly inside the mel range 20..7600"),
    ({"vtln_warp": 1.1, "vtln_high": 7700.0}, "must lie strictly inside"),
])
def test_bad_vtln_options_are_refused_in_one_line(kwargs, message):
    with pytest.raises(InputError, match=message):
        MelBanksOptions(num_mel_bins=40, high_freq=-400, **kwargs).check(16000)
    MelBanksOptions(num_mel_bins=40, high_freq=-400, vtln_low=10.0).check(16000)  # no warp: the points are unused
