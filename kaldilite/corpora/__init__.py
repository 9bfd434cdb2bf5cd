"""Corpus preparation: turn a downloaded corpus into Kaldi data directories.

Each corpus is two functions, as Lhotse shapes them: `download_X(target, source=None)` (idempotent
through a completion marker; `source` may be a local folder or archive, because these machines
have no network) and `prepare_X(corpus_dir, out_dir, ...)` writing `out_dir/<split>/` data dirs.
Recipes call them through `kaldilite download-X` / `kaldilite prepare-X`.
"""
