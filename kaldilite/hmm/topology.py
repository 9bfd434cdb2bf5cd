"""HMM topology: which HMM each phone uses, read from a lang dir's Kaldi text `topo` file.

Follows Kaldi's `HmmTopology` (src/hmm/hmm-topology.{h,cc}): a `<Topology>` holds
`<TopologyEntry>` blocks, each naming its phones in `<ForPhones>` and listing `<State>`s in
order from 0. A state has either `<PdfClass> c` (one pdf class for the forward transitions and
the self-loop) or the pair `<ForwardPdfClass> f <SelfLoopPdfClass> s`, or neither (a
non-emitting state, normally only the last one, the final state), followed by its
`<Transition> dest prob` lines.

kaldilite, like Kaldi's standard recipes, requires that the emitting states of each entry come
first and the final (non-emitting, transition-less) state is last; that is what every topology
written by `prepare_lang` looks like, and it lets the graph and decoder treat "reach the last
state" as "leave the phone".
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.config import convert_string_to_integer, convert_string_to_real

NO_PDF = -1


@dataclass
class HmmState:
    """One state of a topology entry: pdf classes (NO_PDF when non-emitting) and transitions."""

    forward_pdf_class: int = NO_PDF
    self_loop_pdf_class: int = NO_PDF
    transitions: list = field(default_factory=list)  # [(dest_state, prob)] in file order

    @property
    def emitting(self):
        return self.forward_pdf_class != NO_PDF


class Topology:
    """All topology entries of a lang dir and the phone -> entry map.

    `entries[i]` is a list of HmmState; `phones` the sorted phone ids covered.
    """

    def __init__(self, entries, phone_to_entry):
        self.entries = [list(e) for e in entries]
        self.phone_to_entry = dict(phone_to_entry)
        self.phones = sorted(self.phone_to_entry)
        self._check()

    # ----------------------------------------------------------------- reading / writing
    @classmethod
    def read(cls, path):
        """Read a Kaldi text topology file (a lang dir's `topo`)."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: topology file not found; run prepare-lang to create the lang dir")
        with open(path, encoding="utf-8") as handle:
            return cls.from_text(handle.read(), source=path)

    @classmethod
    def from_text(cls, text, source="<topo>"):
        """Parse the text form; errors name `source` and the offending token."""
        tokens = _tokenize(text)
        pos = 0

        def fail(message):
            line = tokens[pos][1] if pos < len(tokens) else (tokens[-1][1] if tokens else 1)
            raise InputError(f"{source}:{line}: {message}; the file should be Kaldi's text topology format")

        def take():
            nonlocal pos
            if pos >= len(tokens):
                fail("unexpected end of file")
            tok = tokens[pos][0]
            pos += 1
            return tok

        def take_int():
            nonlocal pos
            tok = take()
            try:
                return convert_string_to_integer(tok)
            except ValueError:
                pos -= 1
                fail(f"expected an integer, got {tok!r}")

        def take_float():
            nonlocal pos
            tok = take()
            try:  # HmmTopology::Read: `stream >> float`, which takes no inf or nan
                value = convert_string_to_real(tok)
                if not math.isfinite(value):
                    raise ValueError
                return value
            except ValueError:
                pos -= 1
                fail(f"expected a probability, got {tok!r}")

        if take() != "<Topology>":
            pos -= 1
            fail("expected <Topology>")
        entries, phone_to_entry = [], {}
        while True:
            tok = take()
            if tok == "</Topology>":
                break
            if tok != "<TopologyEntry>":
                pos -= 1
                fail(f"expected <TopologyEntry> or </Topology>, got {tok!r}")
            if take() != "<ForPhones>":
                pos -= 1
                fail("expected <ForPhones>")
            phones = []
            while True:
                tok = take()
                if tok == "</ForPhones>":
                    break
                try:  # HmmTopology::Read: ConvertStringToInteger
                    phones.append(convert_string_to_integer(tok))
                except ValueError:
                    pos -= 1
                    fail(f"expected a phone id, got {tok!r}")
            states = []
            tok = take()
            while tok != "</TopologyEntry>":
                if tok != "<State>":
                    pos -= 1
                    fail(f"expected <State> or </TopologyEntry>, got {tok!r}")
                index = take_int()
                if index != len(states):
                    pos -= 1
                    fail(f"states must be numbered in order from 0: expected {len(states)}, got {index}")
                state = HmmState()
                tok = take()
                if tok == "<PdfClass>":
                    state.forward_pdf_class = state.self_loop_pdf_class = take_int()
                    tok = take()
                elif tok == "<ForwardPdfClass>":
                    state.forward_pdf_class = take_int()
                    if take() != "<SelfLoopPdfClass>":
                        pos -= 1
                        fail("<ForwardPdfClass> must be followed by <SelfLoopPdfClass>")
                    state.self_loop_pdf_class = take_int()
                    tok = take()
                while tok == "<Transition>":
                    dest = take_int()
                    prob = take_float()
                    state.transitions.append((dest, prob))
                    tok = take()
                if tok != "</State>":
                    pos -= 1
                    fail(f"expected <Transition> or </State>, got {tok!r}")
                states.append(state)
                tok = take()
            entry_index = len(entries)
            entries.append(states)
            for phone in phones:
                if phone <= 0:
                    fail(f"phone id {phone} is not positive (0 is epsilon)")
                if phone in phone_to_entry:
                    fail(f"phone {phone} appears in more than one <TopologyEntry>")
                phone_to_entry[phone] = entry_index
        try:
            return cls(entries, phone_to_entry)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None

    def to_text(self):
        """The Kaldi text form (what `Topology.read` parses back to an equal object)."""
        lines = ["<Topology>"]
        for index, states in enumerate(self.entries):
            phones = sorted(p for p, e in self.phone_to_entry.items() if e == index)
            lines += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
            for s, state in enumerate(states):
                parts = [f"<State> {s}"]
                if state.emitting:
                    if state.forward_pdf_class == state.self_loop_pdf_class:
                        parts.append(f"<PdfClass> {state.forward_pdf_class}")
                    else:
                        parts.append(
                            f"<ForwardPdfClass> {state.forward_pdf_class} "
                            f"<SelfLoopPdfClass> {state.self_loop_pdf_class}"
                        )
                parts += [f"<Transition> {d} {p!r}" for d, p in state.transitions]
                parts.append("</State>")
                lines.append(" ".join(parts))
            lines.append("</TopologyEntry>")
        lines.append("</Topology>")
        return "\n".join(lines) + "\n"

    def write(self, path):
        from kaldilite.utils import atomic_open

        with atomic_open(path, "w") as handle:
            handle.write(self.to_text())

    # ----------------------------------------------------------------- queries
    def entry(self, phone):
        """The list of HmmState used by `phone`."""
        try:
            return self.entries[self.phone_to_entry[phone]]
        except KeyError:
            raise InputError(f"phone {phone} has no entry in the topology (incompatible lang dir and model?)") from None

    def num_pdf_classes(self, phone):
        """1 + the largest pdf class used by the phone's HMM (Kaldi's NumPdfClasses)."""
        classes = [c for s in self.entry(phone) for c in (s.forward_pdf_class, s.self_loop_pdf_class)]
        return 1 + max(classes)

    def num_emitting_states(self, phone):
        return sum(1 for s in self.entry(phone) if s.emitting)

    def is_hmm(self):
        """True when every state uses one pdf class for both forward and self-loop transitions."""
        return all(s.forward_pdf_class == s.self_loop_pdf_class for e in self.entries for s in e)

    def min_length(self, phone):
        """Fewest frames any path through the phone's HMM takes (Kaldi's MinLength)."""
        states = self.entry(phone)
        n = len(states)
        big = 1 << 30
        best = [big] * n
        best[0] = 1 if states[0].emitting else 0
        changed = True
        while changed:  # relax until fixed point: topologies are tiny
            changed = False
            for s, state in enumerate(states):
                if best[s] == big:
                    continue
                for dest, _ in state.transitions:
                    cand = best[s] + (1 if states[dest].emitting else 0)
                    if cand < best[dest]:
                        best[dest] = cand
                        changed = True
        return best[-1]

    def __eq__(self, other):
        return isinstance(other, Topology) and self.to_text() == other.to_text()

    def __repr__(self):
        return f"Topology({len(self.entries)} entries, {len(self.phones)} phones)"

    # ----------------------------------------------------------------- validation
    def _check(self):
        if not self.phone_to_entry:
            raise InputError("topology covers no phones")
        for index, states in enumerate(self.entries):
            where = f"topology entry {index + 1}"
            if len(states) < 2:
                raise InputError(f"{where} needs at least one emitting state and a final state")
            final = states[-1]
            if final.emitting or final.transitions:
                raise InputError(f"{where}: the last state must be the final state (no pdf class, no transitions)")
            for s, state in enumerate(states[:-1]):
                if not state.emitting:
                    raise InputError(f"{where}: state {s} is non-emitting but not final; "
                                     "kaldilite supports non-emitting states only as the final state")
                if not state.transitions:
                    raise InputError(f"{where}: state {s} has no transitions")
                dests = [d for d, _ in state.transitions]
                if len(set(dests)) != len(dests):
                    raise InputError(f"{where}: state {s} has two transitions to the same state")
                for dest, prob in state.transitions:
                    if not 0 <= dest < len(states):
                        raise InputError(f"{where}: state {s} has a transition to nonexistent state {dest}")
                    if not prob > 0:
                        raise InputError(f"{where}: state {s} has a transition with probability {prob} "
                                         "(remove zero-probability transitions)")
                total = sum(p for _, p in state.transitions)
                if abs(total - 1.0) > 0.01:
                    raise InputError(f"{where}: transitions out of state {s} sum to {total:g}, not 1")
            if not _final_reachable(states):
                raise InputError(f"{where}: the final state is not reachable from state 0")


def _final_reachable(states):
    seen, frontier = {0}, [0]
    while frontier:
        s = frontier.pop()
        for d, _ in states[s].transitions:
            if d not in seen:
                seen.add(d)
                frontier.append(d)
    return len(states) - 1 in seen


_TOKEN = re.compile(r"\S+")


def _tokenize(text):
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        out.extend((m.group(0), lineno) for m in _TOKEN.finditer(line))
    return out
