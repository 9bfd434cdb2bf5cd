"""Decode layer: the beam decoder over a `CompiledFst`, forced alignment, lattices, confidence and
the out-of-vocabulary rejection rule.

It sees the acoustic model only as a (frames x pdfs) log-likelihood matrix plus `tid_to_pdf`
(Kaldi's DecodableInterface seam): it never imports `kaldilite.gmm` or `kaldilite.nnet`.
"""

from kaldilite.decode.align import align_utterance
from kaldilite.decode.decoder import BeamDecoder, DecodeResult, DecoderOptions, decode_utterance
from kaldilite.decode.lattice import Lattice, RawLattice, read_lattices, write_lattices
from kaldilite.decode.rejection import (REJECTED, Decision, Recognizer, RecognizerOptions, RejectionRule,
                                        read_fillers, recognize)

__all__ = ["align_utterance", "BeamDecoder", "DecodeResult", "DecoderOptions", "decode_utterance", "Lattice",
           "RawLattice", "read_lattices", "write_lattices", "REJECTED", "Decision", "Recognizer",
           "RecognizerOptions", "RejectionRule", "read_fillers", "recognize"]
