"""Audio sources for online decoding: microphone, wav files, raw PCM on stdin, and resampling.

Each source runs its capture in its own thread (PortAudio's callback thread for the microphone)
and hands fixed-size chunks to the recognizer through a bounded `ChunkRing`. A source that
cannot wait (the microphone, a wav file played in real time) drops a chunk when the ring is
full: the drop is counted (`overruns`, `dropped_samples`) and visible to the reader, because
every chunk carries the stream index of its first sample, so a gap shows up as a jump. Sources
that can wait (wav as fast as possible, stdin) block instead and never drop.

Samples are float32 in 16-bit integer scale, as `kaldilite.io.audio.read_audio` gives them and
Kaldi's feature code expects. `StreamingResampler` converts a stream between integer rates and
produces exactly what `kaldilite.io.audio.resample` (scipy's `resample_poly`) gives for the
whole signal, whatever the chunking. The seed system's ALSA capture thread + ring buffer is what
this replaces; PortAudio is reached through the `sounddevice` package (Debian `libportaudio2`).
"""

import dataclasses
import logging
import math
import sys
import threading
import time

import numpy as np

from kaldilite.errors import AudioError, DeviceError, InputError

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SECONDS = 0.01  # capture granularity (PortAudio block, ring slot)
DEFAULT_BUFFER_SECONDS = 10.0
PIPE_EXAMPLE = "arecord -q -f S16_LE -r 16000 -c 1 -t raw | kaldilite decode-online --stdin --sample-rate 16000 ..."
NO_AUDIO_TIMEOUT_SECONDS = 5.0  # a microphone that delivers nothing for this long is an error


@dataclasses.dataclass
class AudioChunk:
    """`samples` (float32, 16-bit scale) starting at stream sample index `start`; `arrival` is the
    `time.monotonic()` at which the capture thread queued it (None: the reader's own time)."""

    samples: np.ndarray
    start: int
    arrival: float = None

    @property
    def end(self):
        return self.start + len(self.samples)


class ChunkRing:
    """A bounded, thread-safe ring of fixed-size audio chunks (one writer, one reader).

    `write(samples, block)` takes any number of samples and queues them as chunks of
    `chunk_samples`; when the ring is full a non-blocking write drops the chunk (counted in
    `overruns` / `dropped_samples`; the stream index still advances, so the reader sees the gap),
    a blocking one waits. `close(error)` ends the stream (queuing a last partial chunk);
    `read(timeout)` returns the next `AudioChunk`, None at the end, re-raises the writer's error,
    and raises TimeoutError when nothing arrives in time.
    """

    def __init__(self, chunk_samples, capacity_chunks):
        if chunk_samples < 1 or capacity_chunks < 1:
            raise InputError(f"ring buffer needs positive sizes, got {chunk_samples} samples x {capacity_chunks}")
        self.chunk_samples = int(chunk_samples)
        self.capacity = int(capacity_chunks)
        self._data = np.zeros((self.capacity, self.chunk_samples), dtype=np.float32)
        self._start = np.zeros(self.capacity, dtype=np.int64)
        self._length = np.zeros(self.capacity, dtype=np.int64)
        self._arrival = np.zeros(self.capacity, dtype=np.float64)
        self._head = 0  # next slot to read
        self._count = 0
        self._pending = np.zeros(self.chunk_samples, dtype=np.float32)
        self._pending_len = 0
        self._next_sample = 0  # stream index of the next sample written
        self._cond = threading.Condition()
        self._closed = False
        self._error = None
        self.overruns = 0
        self.dropped_samples = 0

    def write(self, samples, block=False):
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        pos = 0
        while pos < samples.size:
            take = min(self.chunk_samples - self._pending_len, samples.size - pos)
            self._pending[self._pending_len:self._pending_len + take] = samples[pos:pos + take]
            self._pending_len += take
            pos += take
            if self._pending_len == self.chunk_samples:
                self._push(block)

    def _push(self, block):
        length = self._pending_len
        start = self._next_sample
        self._next_sample += length
        self._pending_len = 0
        with self._cond:
            while block and self._count == self.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                return
            if self._count == self.capacity:
                self.overruns += 1
                self.dropped_samples += length
                return
            slot = (self._head + self._count) % self.capacity
            self._data[slot, :length] = self._pending[:length]
            self._start[slot] = start
            self._length[slot] = length
            self._arrival[slot] = time.monotonic()
            self._count += 1
            self._cond.notify_all()

    def close(self, error=None):
        """End of stream (or the writer's `error`, re-raised to the reader); idempotent."""
        if self._pending_len and error is None and not self._closed:
            self._push(block=False)
        with self._cond:
            if error is not None and self._error is None:
                self._error = error
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self):
        return self._closed

    def read(self, timeout=None):
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._count == 0 and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no audio arrived")
                self._cond.wait(remaining)
            if self._error is not None:
                raise self._error
            if self._count == 0:
                return None
            slot = self._head
            chunk = AudioChunk(self._data[slot, :self._length[slot]].copy(), int(self._start[slot]),
                               float(self._arrival[slot]))
            self._head = (self._head + 1) % self.capacity
            self._count -= 1
            self._cond.notify_all()
            return chunk


class AudioSource:
    """Base class: `name`, `sample_rate`, `chunks()` (iterator of AudioChunk), overrun counters."""

    name = "audio"
    sample_rate = 0
    read_timeout = None
    realtime = False  # chunks arrive at the pace of speech (their arrival time is meaningful)

    def __init__(self, chunk_seconds, buffer_seconds):
        self.chunk_seconds = float(chunk_seconds)
        self.buffer_seconds = float(buffer_seconds)
        self._ring = None

    def _make_ring(self):
        chunk = max(1, int(round(self.chunk_seconds * self.sample_rate)))
        capacity = max(2, int(math.ceil(self.buffer_seconds / (chunk / self.sample_rate))))
        self._ring = ChunkRing(chunk, capacity)
        return self._ring

    @property
    def overruns(self):
        return self._ring.overruns if self._ring else 0

    @property
    def dropped_samples(self):
        return self._ring.dropped_samples if self._ring else 0

    def _start_capture(self, ring):
        raise NotImplementedError

    def _stop_capture(self):
        pass

    def chunks(self):
        ring = self._make_ring()
        self._start_capture(ring)
        try:
            while True:
                try:
                    chunk = ring.read(self.read_timeout)
                except TimeoutError:
                    raise DeviceError(f"{self.name}: no audio for {self.read_timeout:g} s; is the device "
                                      "muted, unplugged or used by another program?") from None
                if chunk is None:
                    return
                yield chunk
        finally:
            ring.close()
            self._stop_capture()

    def _run_thread(self, target, ring):
        def body():
            try:
                target(ring)
            except BaseException as exc:  # handed to the reader, which raises it
                ring.close(exc)
            else:
                ring.close()

        thread = threading.Thread(target=body, name=f"capture {self.name}", daemon=True)
        thread.start()
        return thread


class WavSource(AudioSource):
    """A sound file streamed chunk by chunk, paced in real time (`realtime=True`, dropping chunks
    the reader does not take in time, like a microphone) or as fast as the reader takes them.
    `channel`: the 0-based channel of a multi-channel file (refused without it, as `read_audio`)."""

    def __init__(self, path, chunk_seconds=DEFAULT_CHUNK_SECONDS, realtime=False,
                 buffer_seconds=DEFAULT_BUFFER_SECONDS, channel=None):
        from kaldilite.io.audio import read_audio

        super().__init__(chunk_seconds, buffer_seconds)
        self.name = str(path)
        self.realtime = realtime
        import soundfile

        try:
            self.sample_rate = int(soundfile.info(str(path)).samplerate)
        except (RuntimeError, soundfile.LibsndfileError, OSError):
            pass  # read_audio names the problem
        self.waveform = read_audio(str(path), channel=channel, origin=None)  # a file named directly, no wav.scp
        if not self.sample_rate:
            raise AudioError(f"{path}: cannot tell the sample rate")

    def _start_capture(self, ring):
        def capture(ring):
            step = ring.chunk_samples
            begin = time.monotonic()
            for pos in range(0, len(self.waveform), step):
                if ring.closed:
                    return
                if self.realtime:
                    delay = begin + (pos + step) / self.sample_rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                ring.write(self.waveform[pos:pos + step], block=not self.realtime)

        self._run_thread(capture, ring)


class StdinSource(AudioSource):
    """Raw 16-bit little-endian mono PCM from a binary stream (stdin), e.g. from
    `arecord -q -f S16_LE -r 16000 -c 1 -t raw`.

    A stream that starts with a WAV header (arecord without `-t raw` writes one, as does
    `cat file.wav`) has it read, not decoded as 22 samples of noise: its rate is the stream's
    (an explicit `sample_rate` that disagrees is refused), and anything but 16-bit mono PCM is
    refused with the arecord options that make it. `explicit_rate` False: `sample_rate` is only the
    default for headerless PCM (the model's rate).
    """

    def __init__(self, sample_rate, stream=None, chunk_seconds=DEFAULT_CHUNK_SECONDS,
                 buffer_seconds=DEFAULT_BUFFER_SECONDS, explicit_rate=True):
        super().__init__(chunk_seconds, buffer_seconds)
        self.name = "stdin"
        self.sample_rate = int(sample_rate)
        self._pending = b""  # bytes read while looking for a header: the first audio
        self._data_bytes = None  # the header's data size, when it gives a real one
        if stream is None:
            if sys.stdin is None:
                raise InputError("stdin is closed; pipe raw 16-bit PCM into it, e.g. " + PIPE_EXAMPLE)
            stream = sys.stdin.buffer
        try:
            is_tty = stream.isatty()
        except (ValueError, OSError):
            raise InputError("stdin is closed; pipe raw 16-bit PCM into it, e.g. " + PIPE_EXAMPLE) from None
        if is_tty:
            raise InputError("stdin is a terminal, not audio; pipe raw 16-bit PCM into it, e.g. " + PIPE_EXAMPLE)
        self._stream = stream
        self._read_wav_header(explicit_rate)

    def _read(self, size):
        """Up to `size` bytes from the stream (b"" at its end)."""
        try:
            return self._stream.read(size)
        except (OSError, ValueError) as exc:
            raise InputError(f"stdin: cannot read audio ({exc}); was it closed?") from None

    def _read_exactly(self, size):
        data = b""
        while len(data) < size:
            more = self._read(size - len(data))
            if not more:
                break
            data += more
        return data

    def _read_wav_header(self, explicit_rate):
        """Consume a RIFF/WAVE header up to its data chunk, if the stream starts with one."""
        start = self._read_exactly(12)
        if not (start[:4] == b"RIFF" and start[8:12] == b"WAVE"):
            self._pending = start
            return
        fmt = None
        while True:
            chunk = self._read_exactly(8)
            if len(chunk) < 8:
                raise InputError("stdin: a WAV header without a data chunk; pipe raw 16-bit PCM or a whole WAV "
                                 "stream, e.g. " + PIPE_EXAMPLE)
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                break
            body = self._read_exactly(size + (size & 1))  # RIFF chunks are padded to even sizes
            if chunk_id == b"fmt " and len(body) >= 16:
                fmt = body
        if fmt is None:
            raise InputError("stdin: a WAV header without a fmt chunk; pipe raw 16-bit PCM instead, e.g. "
                             + PIPE_EXAMPLE)
        tag, channels = int.from_bytes(fmt[0:2], "little"), int.from_bytes(fmt[2:4], "little")
        rate, bits = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[14:16], "little")
        if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the subformat GUID
            tag = int.from_bytes(fmt[24:26], "little")
        if tag != 1 or bits != 16 or channels != 1:
            raise InputError(f"stdin: WAV stream of {channels} channel(s), {bits}-bit, format {tag} at {rate} Hz; "
                             "decode-online reads 16-bit mono PCM (arecord -f S16_LE -c 1; sox ... -b 16 -c 1 "
                             "-e signed-integer)")
        if explicit_rate and rate != self.sample_rate:
            raise InputError(f"stdin: the WAV header says {rate} Hz but --sample-rate is {self.sample_rate}; drop "
                             "--sample-rate (a WAV stream's own rate is used)")
        self.sample_rate = rate
        # a streaming writer (arecord, sox to a pipe) does not know the length: 0 or ~2**31..2**32
        self._data_bytes = size if 0 < size < 0x7FFF0000 else None
        log.info("stdin: a WAV stream (16-bit mono, %d Hz)", rate)

    def _start_capture(self, ring):
        def capture(ring):
            chunk_bytes = 2 * ring.chunk_samples
            total = 0
            carry, self._pending = self._pending, b""  # the bytes read looking for a WAV header come first
            left = self._data_bytes  # a WAV header's data size: what follows it is not audio
            while not ring.closed:
                want = chunk_bytes if left is None else min(chunk_bytes, left - total - len(carry))
                got = self._read(want) if want > 0 else b""
                data = carry + got
                usable = len(data) - len(data) % 2
                carry = data[usable:]
                if usable:
                    total += usable
                    ring.write(np.frombuffer(data[:usable], dtype="<i2").astype(np.float32), block=True)
                elif not got:  # the end of the stream (or of the header's data)
                    break
            if carry:
                log.warning("stdin: ignoring a trailing odd byte (16-bit samples expected)")
            if total == 0:
                raise InputError("stdin was closed before any audio arrived; pipe raw 16-bit PCM into it, e.g. "
                                 + PIPE_EXAMPLE)

        self._run_thread(capture, ring)


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise DeviceError(f"audio input is unavailable ({exc}); install PortAudio (Debian: apt-get install "
                          "libportaudio2) and the sounddevice package") from None
    return sounddevice


def list_devices():
    """Lines describing the input devices PortAudio sees (`--list-devices`)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudioError and friends
        raise DeviceError(f"cannot list audio devices ({exc})") from None
    try:
        default_in = sd.default.device[0]
    except Exception:
        default_in = -1
    lines = []
    for index, info in enumerate(devices):
        if info.get("max_input_channels", 0) > 0:
            mark = "*" if index == default_in else " "
            lines.append(f"{mark} {index:3d} {info['name']} ({info['max_input_channels']} in, "
                         f"{info['default_samplerate']:g} Hz)")
    return lines


def _no_input_devices(sd):
    """True when PortAudio lists devices and none of them records (False when it cannot tell)."""
    try:
        return not any(info.get("max_input_channels", 0) > 0 for info in sd.query_devices())
    except Exception:  # PortAudioError and friends: it cannot tell
        return False


class MicSource(AudioSource):
    """Microphone capture through PortAudio (`sounddevice.InputStream`); its callback thread is the
    capture thread. PortAudio's own input overflows are counted too (`device_overflows`).

    `sample_rate` None opens the device at `preferred_rate` when it supports it, else at its
    default rate (the recognizer then resamples); an explicit `sample_rate` the device refuses
    is an error. `other_inputs`: what the calling verb offers instead of a microphone, named when
    the machine has none (decode-online: "decode files with --wav FILE... or --stdin").
    """

    read_timeout = NO_AUDIO_TIMEOUT_SECONDS
    realtime = True

    def __init__(self, device=None, sample_rate=None, preferred_rate=None, chunk_seconds=DEFAULT_CHUNK_SECONDS,
                 buffer_seconds=DEFAULT_BUFFER_SECONDS, other_inputs=None):
        super().__init__(chunk_seconds, buffer_seconds)
        sd = self._sd = _sounddevice()
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        try:
            info = sd.query_devices(device, "input")
        except Exception as exc:
            if device is None and _no_input_devices(sd):
                raise DeviceError(f"no default input device: PortAudio sees no audio input at all ({exc}); connect a "
                                  "microphone (and check this user may open it, e.g. group audio)"
                                  + (f", or {other_inputs}" if other_inputs else "")) from None
            what = f"input device {device!r}" if device is not None else "default input device"
            raise DeviceError(f"no {what} ({exc}); choose one with --device N from "
                              "`kaldilite decode-online --list-devices`") from None
        if not info or info.get("max_input_channels", 0) < 1:
            raise DeviceError(f"device {device!r} has no input channels; see `kaldilite decode-online --list-devices`")
        self.device = device
        self.name = f"mic:{info['name']}"
        candidates = [sample_rate] if sample_rate else [preferred_rate, info["default_samplerate"]]
        errors = []
        for rate in [int(r) for r in candidates if r]:
            try:
                sd.check_input_settings(device=device, channels=1, dtype="int16", samplerate=rate)
            except Exception as exc:
                errors.append(f"{rate} Hz: {exc}")
                continue
            self.sample_rate = rate
            break
        else:
            hint = (f"; its default rate is {info['default_samplerate']:g} Hz: omit --sample-rate to resample from it"
                    if sample_rate else "")
            raise DeviceError(f"{self.name} cannot record mono 16-bit audio at {' or '.join(errors)}{hint}")
        self.device_overflows = 0
        self._stream = None

    def _start_capture(self, ring):
        sd = self._sd

        def callback(indata, frames, time_info, status):
            if status and getattr(status, "input_overflow", False):
                self.device_overflows += 1
            ring.write(np.asarray(indata, dtype=np.float32)[:, 0], block=False)

        try:
            self._stream = sd.InputStream(device=self.device, samplerate=self.sample_rate, channels=1, dtype="int16",
                                          blocksize=ring.chunk_samples, callback=callback,
                                          finished_callback=ring.close)
            self._stream.start()
        except Exception as exc:
            ring.close()
            raise DeviceError(f"{self.name}: cannot start recording at {self.sample_rate} Hz ({exc})") from None

    def _stop_capture(self):
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:  # closing a failed device must not mask the real error
                log.debug("%s: closing the stream failed: %s", self.name, exc)
            self._stream = None
        if self.device_overflows:
            log.warning("%s: PortAudio reported %d input overflow(s)", self.name, self.device_overflows)


class StreamingResampler:
    """Integer-rate resampling of a stream, equal to `resample_poly` over the whole signal.

    Output sample n is sum_j x[j] h[n*down + half_len - j*up] with scipy's default filter
    (Kaiser-windowed sinc, beta 5, half length 10*max(up, down)), the same delay compensation,
    and ceil(N*up/down) outputs in total. An output is produced once every input it needs has
    arrived (a delay of half_len/up input samples); `flush()` produces the rest.
    """

    def __init__(self, from_rate, to_rate):
        from scipy.signal import firwin

        from_rate, to_rate = int(from_rate), int(to_rate)
        common = math.gcd(from_rate, to_rate)
        self.up, self.down = to_rate // common, from_rate // common
        self.from_rate, self.to_rate = from_rate, to_rate
        max_rate = max(self.up, self.down)
        self.half_len = 10 * max_rate
        h = firwin(2 * self.half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        self.taps = int(math.ceil(len(h) / self.up))
        self._h = np.zeros(self.taps * self.up)
        self._h[:len(h)] = h
        self._x = np.zeros(0)
        self._x_offset = 0  # stream index of self._x[0]
        self._num_in = 0
        self._next_out = 0

    def _outputs(self, last_out):
        n = np.arange(self._next_out, last_out)
        if n.size == 0:
            return np.zeros(0, dtype=np.float32)
        t = n * self.down + self.half_len
        j_max = t // self.up
        phase = t % self.up
        j = j_max[:, None] - np.arange(self.taps)[None, :]
        coeffs = self._h[phase[:, None] + self.up * np.arange(self.taps)[None, :]]
        local = j - self._x_offset
        valid = (j >= 0) & (j < self._num_in)
        x = np.where(valid, self._x[np.clip(local, 0, max(len(self._x) - 1, 0))] if len(self._x) else 0.0, 0.0)
        self._next_out = last_out
        # keep the inputs the next output still needs
        first_needed = (last_out * self.down + self.half_len) // self.up - self.taps + 1
        drop = min(max(0, first_needed - self._x_offset), len(self._x))
        self._x = self._x[drop:]
        self._x_offset += drop
        return (coeffs * x).sum(axis=1).astype(np.float32)

    def accept(self, samples):
        """Take input samples; return the output samples now complete."""
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        self._x = np.concatenate([self._x, samples])
        self._num_in += samples.size
        # output n is complete when j_max(n) < num_in, i.e. n*down + half_len < num_in * up
        last = max(self._next_out, -(-(self._num_in * self.up - self.half_len) // self.down))
        total = -(-self._num_in * self.up // self.down)
        return self._outputs(min(last, total))

    def flush(self):
        """End of input: the remaining outputs (ceil(N*up/down) in all)."""
        return self._outputs(-(-self._num_in * self.up // self.down))


__all__ = ["AudioChunk", "ChunkRing", "AudioSource", "WavSource", "StdinSource", "MicSource", "list_devices",
           "StreamingResampler", "DEFAULT_CHUNK_SECONDS"]
