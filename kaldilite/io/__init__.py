"""The io layer: everything kaldilite reads and writes in Kaldi's formats.

- `kaldilite.io.audio`: waveforms from wav.scp entries (files or `cmd |` pipes), rate checks, resampling.
- `kaldilite.io.tables`: ark/scp tables of matrices, vectors and alignments (over kaldi_io).
- `kaldilite.io.datadir`: data directories and Kaldi's utils/{validate,fix,subset,combine,split} operations.
- `kaldilite.io.symbols`: words.txt / phones.txt symbol tables.
- `kaldilite.io.config`: Kaldi `--option=value` config files.

Submodules are imported explicitly (`from kaldilite.io.tables import read_matrices`) so that
importing one does not pull in the others' dependencies.
"""
