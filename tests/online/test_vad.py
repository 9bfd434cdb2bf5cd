"""The VAD gate: segment boundaries worked out by hand with a known classifier, and the real WebRTC VAD."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.online.vad import VadGate, VadOptions

RATE = 8000


def loud(frame_bytes, rate):
    return np.abs(np.frombuffer(frame_bytes, dtype="<i2")).max() > 100


def run(gate, signal, step):
    events = []
    for pos in range(0, len(signal), step):
        events += gate.accept(signal[pos:pos + step])
    return events + gate.finish()


@pytest.mark.parametrize("step", [80, 240, 1000, 7])
def test_segment_starts_a_padding_before_the_onset_and_ends_a_hangover_after_speech(step):
    signal = np.zeros(3 * RATE, dtype=np.float32)
    signal[8000:12000] = 1000.0  # speech from 1.0 s to 1.5 s
    gate = VadGate(RATE, VadOptions(vad=True, vad_frame_length=30, vad_padding=0.3, vad_hangover=0.4), loud)
    events = run(gate, signal, step)
    starts = [e[1] for e in events if e[0] == "start"]
    ends = [e[1] for e in events if e[0] == "end"]
    # 240-sample frames: the first speech frame is 33 (7920..8160), the trigger (2 of 3) comes on
    # frame 34; 0.3 s = 10 frames of padding -> frame 23 = sample 5520. The last speech frame is 49;
    # 0.4 s = 13 frames of hangover end with frame 62 -> sample 63 * 240 = 15120.
    assert starts == [5520] and ends == [15120]
    audio = [e for e in events if e[0] == "audio"]
    assert audio[0][1] == 5520
    np.testing.assert_array_equal(np.concatenate([e[2] for e in audio]), signal[5520:15120])


def test_two_words_far_apart_give_two_segments_and_an_open_one_closes_at_the_end():
    signal = np.zeros(4 * RATE, dtype=np.float32)
    signal[4000:6000] = 1000.0
    signal[24000:] = 1000.0  # still speaking when the stream ends
    gate = VadGate(RATE, VadOptions(vad=True, vad_padding=0.0), loud)
    events = run(gate, signal, 160)
    assert [e[0] for e in events if e[0] != "audio"] == ["start", "end", "start", "end"]
    assert events[-1] == ("end", len(signal))  # the last partial VAD frame is passed on too


def test_the_real_webrtc_vad_finds_a_spoken_digit_between_silences(fsdd_dir):
    from kaldilite.io.audio import read_audio

    speech = read_audio(str(fsdd_dir / "7_jackson_0.wav"))
    signal = np.concatenate([np.zeros(RATE, np.float32), speech, np.zeros(RATE, np.float32)])
    gate = VadGate(RATE, VadOptions(vad=True, vad_mode=2, vad_padding=0.1, vad_hangover=0.3))
    events = run(gate, signal, 160)
    starts = [e[1] for e in events if e[0] == "start"]
    ends = [e[1] for e in events if e[0] == "end"]
    assert len(starts) == 1 and len(ends) == 1
    assert RATE - 0.15 * RATE <= starts[0] <= RATE + 0.1 * RATE  # at the word, give or take the padding
    assert RATE + len(speech) <= ends[0] <= RATE + len(speech) + 0.45 * RATE


def test_rates_webrtc_cannot_handle_are_refused():
    with pytest.raises(InputError, match="WebRTC VAD works at"):
        VadGate(11025, VadOptions(vad=True), loud)
