"""Recording a command corpus from the microphone: prompts, VAD-trimmed takes, a Kaldi data dir.

`kaldilite record --prompts commands.txt --repeat N --speaker NAME OUT_DIR` is how a user
collects their own voices for the commands recipe (`run.sh --corpus OUT_DIR`). Each prompt
(a line of a commands file: `turn on the light`, `打开 空调`) is shown, the microphone
(`sources.MicSource`) records until the WebRTC VAD (`vad.VadGate`) has heard speech and then
`--vad-hangover` seconds of non-speech; the take is trimmed to the VAD segment (with its
pre-roll), resampled to `--sample-frequency`, and kept, redone, skipped or the session ended,
as the speaker chooses.

Output, Kaldi's layout (utils/validate_data_dir.sh accepts it): `OUT_DIR/wav/<utt>.wav`
(mono 16-bit PCM), `wav.scp`, `text`, `utt2spk`, `spk2utt`. Utterance ids are
`<speaker>-<prompt number>-<take>` (`alice-003-02`): the speaker prefix keeps the sort order
Kaldi requires, and numbers keep ids ASCII whatever the prompt's script. Every accepted take is
written atomically (wav first, then the data-dir files), so a session stopped at any point
leaves a valid data dir, and re-running the same command continues with the takes still
missing. Kaldi has no recording tool; this follows the prompt-record-review loop of corpus
recording tools, with Kaldi's data dir as the result.
"""

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError
from kaldilite.online.vad import VAD_RATES, VadGate, VadOptions

log = logging.getLogger(__name__)

ACCEPT, REDO, SKIP, QUIT = "accept", "redo", "skip", "quit"
KEYS = {"a": ACCEPT, "y": ACCEPT, "r": REDO, "s": SKIP, "q": QUIT}
_SPEAKER = re.compile(r"^[A-Za-z0-9_]+$")


@dataclasses.dataclass
class RecordOptions:
    """Options of `kaldilite record`."""

    repeat: int = 5               # takes per prompt
    sample_frequency: int = 16000  # rate of the written wavs
    max_wait: float = 5.0          # seconds to wait for speech to start
    max_seconds: float = 4.0       # longest take (speech that does not stop is cut here)
    vad: VadOptions = dataclasses.field(default_factory=lambda: VadOptions(vad=True, vad_hangover=0.5))


@dataclasses.dataclass
class Take:
    """One recorded take: `samples` (float32, 16-bit scale) at `sample_rate`; `heard` is False
    when no speech started within max_wait; `cut` True when max_seconds ended it."""

    samples: np.ndarray
    sample_rate: int
    heard: bool
    cut: bool = False

    @property
    def seconds(self):
        return len(self.samples) / self.sample_rate

    @property
    def peak(self):
        return float(np.max(np.abs(self.samples))) if len(self.samples) else 0.0


def record_take(source, opts, is_speech=None):
    """Record one VAD-trimmed take from an `AudioSource` (the microphone): the first speech segment.

    The stream is converted to `opts.sample_frequency` as it arrives (the VAD needs one of its
    rates), and closed as soon as the segment ends.
    """
    from kaldilite.online.sources import StreamingResampler

    rate = int(opts.sample_frequency)
    resampler = StreamingResampler(source.sample_rate, rate) if source.sample_rate != rate else None
    gate = VadGate(rate, opts.vad, is_speech=is_speech)
    pieces, started, cut, seen = [], False, False, 0
    chunks = source.chunks()
    try:
        for chunk in chunks:
            samples = resampler.accept(chunk.samples) if resampler else chunk.samples
            seen += len(samples)
            events = gate.accept(samples)
            done = _collect(events, pieces)
            started = started or any(e[0] == "start" for e in events)
            if done:
                break
            if not started and seen >= opts.max_wait * rate:
                return Take(np.zeros(0, np.float32), rate, heard=False)
            if started and sum(len(p) for p in pieces) >= opts.max_seconds * rate:
                cut = True
                break
        else:  # the stream ended (a file, a fake device): close an open segment
            if resampler:
                _collect(gate.accept(resampler.flush()), pieces)
            _collect(gate.finish(), pieces)
    finally:
        chunks.close()
    if not pieces:
        return Take(np.zeros(0, np.float32), rate, heard=False)
    samples = np.concatenate(pieces)[: int(opts.max_seconds * rate)]
    return Take(samples.astype(np.float32), rate, heard=True, cut=cut)


def _collect(events, pieces):
    """Append the first segment's audio; True once it has ended."""
    for event in events:
        if event[0] == "audio":
            pieces.append(event[2])
        elif event[0] == "end":
            return True
    return False


@dataclasses.dataclass
class Corpus:
    """The data dir being recorded: {utt: (speaker, text, wav path)}, loaded when it exists."""

    out_dir: Path
    utts: dict

    @classmethod
    def open(cls, out_dir):
        from kaldilite.io.datadir import DataDir

        out_dir = Path(out_dir)
        utts = {}
        if (out_dir / "wav.scp").is_file():
            data = DataDir.load(out_dir)
            for utt, wav in (data.wav_scp or {}).items():
                utts[utt] = ((data.utt2spk or {}).get(utt), (data.text or {}).get(utt, ""), wav)
        return cls(out_dir, utts)

    def add(self, utt, speaker, text, take):
        """Write the take's wav and the data-dir files, each atomically."""
        from kaldilite.corpora.augment import write_pcm16
        from kaldilite.io.datadir import DataDir

        wav = self.out_dir / "wav" / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        self.utts[utt] = (speaker, text, write_pcm16(wav, take.samples, take.sample_rate))
        DataDir(wav_scp={u: v[2] for u, v in self.utts.items()}, text={u: v[1] for u, v in self.utts.items()},
                utt2spk={u: v[0] for u, v in self.utts.items()}).save(self.out_dir)


def utterance_id(speaker, prompt_number, take_number):
    return f"{speaker}-{prompt_number:03d}-{take_number:02d}"


def read_prompts(path):
    """Prompts of a commands file (make-grammar syntax: one per line, `#` comments, TAB-weights ignored)."""
    from kaldilite.lang.grammar import read_items

    return [" ".join(words) for words, _, _ in read_items(path, "prompt")]


def record_session(prompts, speaker, out_dir, open_source, ask, show, opts=None, is_speech=None):
    """Run a recording session; returns the number of takes written in it.

    `open_source()` gives a fresh `AudioSource` per take (the microphone); `ask(question)` returns
    the speaker's answer (a line: '' or 'a' accept, 'r' redo, 's' skip, 'q' quit); `show(text)`
    displays a line. Takes already in OUT_DIR are kept and not asked for again.
    """
    opts = opts or RecordOptions()
    if not _SPEAKER.match(speaker or ""):
        raise InputError(f"--speaker {speaker!r}: use letters, digits and '_' only (it starts every utterance id)")
    if int(opts.sample_frequency) not in VAD_RATES:
        raise InputError(f"--sample-frequency {opts.sample_frequency}: the VAD works at "
                         f"{', '.join(map(str, VAD_RATES))} Hz; use 16000 (the commands recipe's rate)")
    if opts.repeat < 1:
        raise InputError(f"--repeat {opts.repeat}: must be at least 1")
    if not prompts:
        raise InputError("no prompts to record")
    corpus = Corpus.open(out_dir)
    todo = [(i, r) for i in range(1, len(prompts) + 1) for r in range(1, opts.repeat + 1)
            if utterance_id(speaker, i, r) not in corpus.utts]
    done_before = len(prompts) * opts.repeat - len(todo)
    if done_before:
        show(f"{out_dir}: {done_before} take(s) of {speaker} already recorded; continuing with the {len(todo)} left")
    written = 0
    for position, (i, r) in enumerate(todo, start=1):
        prompt = prompts[i - 1]
        while True:
            count = f"[{done_before + position}/{len(prompts) * opts.repeat}]"
            show(f"{count} say: {prompt}    (take {r} of {opts.repeat})")
            take = record_take(open_source(), opts, is_speech=is_speech)
            if not take.heard:
                show(f"  no speech heard in {opts.max_wait:g} s (microphone muted? too quiet?)")
                answer = _answer(ask, "  [r]etry, [s]kip, [q]uit? ", default=REDO)
            else:
                note = " (cut at --max-seconds)" if take.cut else ""
                show(f"  {take.seconds:.2f} s, peak {take.peak / 32768:.0%} of full scale{note}")
                answer = _answer(ask, "  [Enter] keep, [r]edo, [s]kip, [q]uit? ", default=ACCEPT)
            if answer == REDO or (answer == ACCEPT and not take.heard):
                continue
            if answer == ACCEPT:
                utt = utterance_id(speaker, i, r)
                corpus.add(utt, speaker, prompt, take)
                written += 1
                log.info("record: %s %r %.2f s", utt, prompt, take.seconds)
            if answer == QUIT:
                show(f"stopped; {len(corpus.utts)} take(s) in {out_dir} (re-run the same command to continue)")
                return written
            break
    show(f"done: {len(corpus.utts)} take(s) in {out_dir}; train with: recipes/commands/run.sh --corpus {out_dir}")
    return written


def _answer(ask, question, default):
    while True:
        key = ask(question).strip().lower()
        if key == "":
            return default
        if key[:1] in KEYS:
            return KEYS[key[:1]]


__all__ = ["RecordOptions", "Take", "record_take", "record_session", "read_prompts", "utterance_id", "Corpus"]
