"""Capture sources: the chunk ring (overruns counted, never silent), stdin/wav streaming, resampling."""

import io
import threading

import numpy as np
import pytest
import soundfile

from kaldilite.errors import InputError
from kaldilite.io.audio import read_audio, resample
from kaldilite.online.sources import ChunkRing, StdinSource, StreamingResampler, WavSource


def drain(ring):
    chunks = []
    while (chunk := ring.read(timeout=5)) is not None:
        chunks.append(chunk)
    return chunks


def test_a_full_ring_drops_whole_chunks_counts_them_and_shows_the_gap():
    ring = ChunkRing(chunk_samples=4, capacity_chunks=3)
    ring.write(np.arange(22, dtype=np.float32))  # 5 whole chunks + 2 samples, nobody reading
    ring.close()
    chunks = drain(ring)
    # 3 chunks fit; the 4th and 5th are dropped; the 2 leftover samples come as a short last chunk
    # only if there is room: there is none, so they are dropped too (a third overrun).
    assert [c.start for c in chunks] == [0, 4, 8]
    assert ring.overruns == 3 and ring.dropped_samples == 10
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), np.arange(12))


def test_a_reader_sees_a_jump_in_the_stream_index_after_an_overrun():
    ring = ChunkRing(chunk_samples=2, capacity_chunks=2)
    ring.write(np.arange(6, dtype=np.float32))   # chunks at 0, 2 kept; 4 dropped
    first = ring.read(timeout=1)
    ring.write(np.arange(6, 8, dtype=np.float32))  # room again: chunk at 6
    ring.close()
    rest = drain(ring)
    assert [first.start] + [c.start for c in rest] == [0, 2, 6]
    assert ring.overruns == 1


def test_blocking_writes_never_drop_with_a_slow_reader():
    ring = ChunkRing(chunk_samples=16, capacity_chunks=2)
    data = np.arange(16 * 50, dtype=np.float32)

    def produce():
        ring.write(data, block=True)
        ring.close()

    thread = threading.Thread(target=produce)
    thread.start()
    chunks = drain(ring)
    thread.join(5)
    assert ring.overruns == 0
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), data)


def test_the_writers_error_reaches_the_reader_and_silence_times_out():
    ring = ChunkRing(4, 2)
    with pytest.raises(TimeoutError):
        ring.read(timeout=0.05)
    ring.close(InputError("device vanished"))
    with pytest.raises(InputError, match="device vanished"):
        ring.read(timeout=1)


def test_stdin_pcm_arrives_sample_exact_in_fixed_chunks():
    pcm = (np.arange(-500, 1234) * 17).astype("<i2")
    source = StdinSource(8000, stream=io.BytesIO(pcm.tobytes()), chunk_seconds=0.01)
    chunks = list(source.chunks())
    assert all(len(c.samples) == 80 for c in chunks[:-1])
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), pcm.astype(np.float32))


def test_stdin_closed_before_any_audio_is_a_one_line_error():
    source = StdinSource(8000, stream=io.BytesIO(b""))
    with pytest.raises(InputError, match="closed before any audio"):
        list(source.chunks())


def test_a_closed_stdin_is_refused_at_once():
    stream = io.BytesIO(b"")
    stream.close()
    with pytest.raises(InputError, match="stdin is closed"):
        StdinSource(8000, stream=stream)


def test_a_wav_file_streams_as_read_audio_reads_it(tmp_path, rng):
    wave = (rng.normal(size=8000 + 37) * 3000).astype(np.int16)
    path = tmp_path / "a.wav"
    soundfile.write(path, wave, 16000, subtype="PCM_16")
    source = WavSource(path, chunk_seconds=0.01)
    chunks = list(source.chunks())
    assert source.sample_rate == 16000 and source.overruns == 0
    assert [c.start for c in chunks] == list(range(0, len(wave), 160))
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), read_audio(str(path)))


@pytest.mark.parametrize("from_rate, to_rate", [(48000, 16000), (44100, 16000), (8000, 16000), (16000, 8000),
                                                (22050, 8000)])
def test_streaming_resampling_equals_whole_signal_resample_poly_for_any_chunking(from_rate, to_rate, rng):
    x = (rng.normal(size=5003) * 1000).astype(np.float32)
    expected = resample(x, from_rate, to_rate)
    resampler = StreamingResampler(from_rate, to_rate)
    pieces, pos = [], 0
    while pos < len(x):
        step = int(rng.integers(1, 400))
        pieces.append(resampler.accept(x[pos:pos + step]))
        pos += step
    pieces.append(resampler.flush())
    got = np.concatenate(pieces)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


def test_a_wav_file_in_real_time_takes_as_long_as_it_lasts(tmp_path, rng):
    import time

    wave = (rng.normal(size=4000) * 3000).astype(np.int16)  # 0.25 s at 16 kHz
    path = tmp_path / "a.wav"
    soundfile.write(path, wave, 16000, subtype="PCM_16")
    source = WavSource(path, chunk_seconds=0.01, realtime=True)
    start = time.monotonic()
    chunks = list(source.chunks())
    elapsed = time.monotonic() - start
    assert 0.24 <= elapsed < 1.0 and source.overruns == 0
    # never early: chunk k is queued only once its audio would have been spoken (a late
    # scheduler may bunch chunks up, but the pacing is by the clock, so it catches up)
    arrivals = np.array([c.arrival for c in chunks]) - start
    assert np.all(arrivals >= 0.01 * np.arange(1, len(chunks) + 1) - 0.002)


def _wav_bytes(samples, rate, channels=1, subtype="PCM_16"):
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def test_a_wav_stream_on_stdin_is_read_by_its_header_not_decoded_as_samples(rng):
    # `cat a.wav |` or arecord without `-t raw`: the header's rate is the stream's, its 44 bytes are
    # no audio, and a chunk after the data (a LIST tag) is not read as samples either.
    pcm = (rng.normal(size=1234) * 3000).astype(np.int16)
    wav = _wav_bytes(pcm, 8000) + b"LIST\x04\x00\x00\x00abcd"
    source = StdinSource(16000, stream=io.BytesIO(wav), explicit_rate=False)
    assert source.sample_rate == 8000
    np.testing.assert_array_equal(np.concatenate([c.samples for c in source.chunks()]), pcm.astype(np.float32))


def test_a_streamed_wav_of_unknown_length_is_read_to_the_end(rng):
    # a writer that cannot seek back (arecord, sox to a pipe) leaves the sizes at 0xFFFFFFFF or so
    pcm = (rng.normal(size=999) * 3000).astype(np.int16)
    wav = bytearray(_wav_bytes(pcm, 16000))
    data_at = wav.index(b"data") + 4
    wav[data_at:data_at + 4] = (0xFFFFFFFF).to_bytes(4, "little")
    source = StdinSource(16000, stream=io.BytesIO(bytes(wav)), explicit_rate=False)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in source.chunks()]), pcm.astype(np.float32))


@pytest.mark.parametrize("channels, subtype, rate, explicit, message", [
    (2, "PCM_16", 16000, False, "2 channel"),
    (1, "PCM_24", 16000, False, "24-bit"),
    (1, "PCM_16", 8000, True, "header says 8000 Hz but --sample-rate is 16000"),
])
def test_a_wav_stream_stdin_cannot_take_is_refused_at_once_with_one_line(channels, subtype, rate, explicit, message):
    wav = _wav_bytes(np.zeros((100, channels)), rate, subtype=subtype)
    with pytest.raises(InputError, match=message) as error:
        StdinSource(16000, stream=io.BytesIO(wav), explicit_rate=explicit)
    assert "\n" not in str(error.value)
