"""Voice activity gate: WebRTC VAD frame decisions with pre-roll and hangover.

The decoder only needs to run around speech. `VadGate` classifies fixed 10/20/30 ms frames
with the WebRTC VAD (`webrtcvad`, from the webrtcvad-wheels package) and turns the frame
decisions into segments: a segment opens when `--vad-trigger-frames` of the last frames are
speech, and starts `--vad-padding` seconds before the first of them (pre-roll, so the onset
of the word is not lost); it closes after `--vad-hangover` seconds of consecutive non-speech.
This is the gate of the seed system (WebRTC VAD in front of MFCC + decoder), made explicit.
"""

import collections
import dataclasses

import numpy as np

from kaldilite.errors import InputError

VAD_RATES = (8000, 16000, 32000, 48000)


@dataclasses.dataclass
class VadOptions:
    """Options of the VAD gate (kaldilite's; no Kaldi equivalent)."""

    vad: bool = dataclasses.field(default=False, metadata={
        "help": "Run the decoder only around speech found by the WebRTC VAD"})
    vad_mode: int = dataclasses.field(default=2, metadata={
        "help": "WebRTC VAD aggressiveness, 0 (least) .. 3 (most ready to call audio non-speech)"})
    vad_frame_length: int = dataclasses.field(default=30, metadata={"help": "VAD frame length in ms (10, 20 or 30)"})
    vad_trigger_frames: int = dataclasses.field(default=2, metadata={
        "help": "Speech frames among the last --vad-trigger-window frames that open a segment"})
    vad_trigger_window: int = dataclasses.field(default=3, metadata={"help": "See --vad-trigger-frames"})
    vad_padding: float = dataclasses.field(default=0.3, metadata={
        "help": "Seconds of audio before the detected onset passed to the decoder (pre-roll)"})
    vad_hangover: float = dataclasses.field(default=0.4, metadata={
        "help": "Seconds of continuous non-speech that close a segment"})

    def check(self, sample_rate):
        if int(sample_rate) not in VAD_RATES:
            raise InputError(f"the WebRTC VAD works at {', '.join(map(str, VAD_RATES))} Hz, not {sample_rate:g} Hz; "
                             "use --vad=false")
        if self.vad_frame_length not in (10, 20, 30):
            raise InputError(f"--vad-frame-length must be 10, 20 or 30 ms, got {self.vad_frame_length}")
        if not 0 <= self.vad_mode <= 3:
            raise InputError(f"--vad-mode must be 0..3, got {self.vad_mode}")
        if not 1 <= self.vad_trigger_frames <= self.vad_trigger_window:
            raise InputError("--vad-trigger-frames must be in 1..--vad-trigger-window")
        if self.vad_padding < 0 or self.vad_hangover <= 0:
            raise InputError("--vad-padding must be >= 0 and --vad-hangover > 0")


class VadGate:
    """Feed audio with `accept(samples)`; get events `("start", sample)`, `("audio", start, samples)`,
    `("end", sample)` (sample indices in the stream). `is_speech(frame_bytes, rate)` may be any
    classifier with webrtcvad's signature (tests pass one)."""

    def __init__(self, sample_rate, opts=None, is_speech=None):
        self.opts = opts or VadOptions()
        self.opts.check(sample_rate)
        self.sample_rate = int(sample_rate)
        if is_speech is None:
            import webrtcvad

            is_speech = webrtcvad.Vad(self.opts.vad_mode).is_speech
        self._is_speech = is_speech
        self.frame_samples = self.sample_rate * self.opts.vad_frame_length // 1000
        self._pending = np.zeros(0, dtype=np.float32)
        self._pos = 0  # stream index of self._pending[0]
        self._padding_frames = int(round(self.opts.vad_padding * 1000 / self.opts.vad_frame_length))
        self._hangover_frames = max(1, int(round(self.opts.vad_hangover * 1000 / self.opts.vad_frame_length)))
        self._history = collections.deque(maxlen=self._padding_frames + self.opts.vad_trigger_window)
        self._recent = collections.deque(maxlen=self.opts.vad_trigger_window)
        self.in_speech = False
        self._silent_run = 0

    def accept(self, samples):
        events = []
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        n = self.frame_samples
        while self._pending.size >= n:
            frame, start = self._pending[:n], self._pos
            self._pending = self._pending[n:]
            self._pos += n
            pcm = np.clip(np.round(frame), -32768, 32767).astype("<i2").tobytes()
            self._frame(frame, start, bool(self._is_speech(pcm, self.sample_rate)), events)
        return events

    def _frame(self, frame, start, speech, events):
        self._recent.append(speech)
        if not self.in_speech:
            self._history.append((start, frame))
            if sum(self._recent) >= self.opts.vad_trigger_frames:
                # Onset: the first speech frame of the trigger window, minus the padding.
                speech_frames = len(self._recent) - list(self._recent).index(True)
                keep = min(len(self._history), speech_frames + self._padding_frames)
                held = list(self._history)[-keep:]
                self.in_speech = True
                self._silent_run = 0
                events.append(("start", held[0][0]))
                events.append(("audio", held[0][0], np.concatenate([f for _, f in held])))
                self._history.clear()
            return
        events.append(("audio", start, frame))
        self._silent_run = 0 if speech else self._silent_run + 1
        if self._silent_run >= self._hangover_frames:
            self.in_speech = False
            self._recent.clear()
            events.append(("end", start + len(frame)))

    def finish(self):
        """End of stream: close an open segment."""
        events = []
        if self.in_speech:
            if self._pending.size:
                events.append(("audio", self._pos, self._pending))
                self._pos += self._pending.size
            self._pending = np.zeros(0, dtype=np.float32)
            self.in_speech = False
            events.append(("end", self._pos))
        return events


__all__ = ["VadOptions", "VadGate", "VAD_RATES"]
