"""Decode layer: the beam decoder over a `CompiledFst` and forced alignment.

It sees the acoustic model only as a (frames x pdfs) log-likelihood matrix plus `tid_to_pdf`
(Kaldi's DecodableInterface seam): it never imports `kaldilite.gmm` or `kaldilite.nnet`.
"""

from kaldilite.decode.align import align_utterance
from kaldilite.decode.decoder import BeamDecoder, DecodeResult, DecoderOptions, decode_utterance

__all__ = ["align_utterance", "BeamDecoder", "DecodeResult", "DecoderOptions", "decode_utterance"]
