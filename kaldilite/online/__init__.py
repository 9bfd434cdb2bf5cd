"""Online (live) recognition: audio sources, VAD, endpointing, the recognizer and model bundles.

`kaldilite decode-online` is built from these parts, each usable alone:

- `sources`: microphone (PortAudio via sounddevice), wav files, raw PCM on stdin; a capture
  thread per source and a bounded `ChunkRing` with counted overruns; `StreamingResampler`.
- `vad`: the WebRTC VAD gate with pre-roll and hangover.
- `endpoint`: Kaldi's online2 endpoint rules (`OnlineEndpointConfig`, `endpoint_detected`).
- `recognizer`: `OnlineRecognizer` (chunks in, `OnlineResult`s out) and `recognize_stream`.
- `bundle`: `export_model` / `ModelBundle` (one self-contained directory per system) and the
  scorer seam through which GMM and nnet2 models plug in (`register_model_type`).

Example::

    bundle = ModelBundle.load("exp/mono_online")
    recognizer = OnlineRecognizer(bundle)
    for result in recognize_stream(recognizer, WavSource("commands.wav")):
        print(result.to_line())
"""

from kaldilite.online.bundle import ModelBundle, export_model, register_model_type
from kaldilite.online.endpoint import OnlineEndpointConfig, endpoint_detected
from kaldilite.online.recognizer import OnlineDecodingOptions, OnlineRecognizer, OnlineResult, recognize_stream
from kaldilite.online.sources import MicSource, StdinSource, WavSource, list_devices

__all__ = ["ModelBundle", "export_model", "register_model_type", "OnlineEndpointConfig", "endpoint_detected",
           "OnlineDecodingOptions", "OnlineRecognizer", "OnlineResult", "recognize_stream", "MicSource", "StdinSource",
           "WavSource", "list_devices"]
