"""An online i-vector dir read back (extract-ivectors-online's output), and the extractor's identity.

Kaldi's steps/online/nnet2/extract_ivectors_online.sh leaves `ivector_online.scp` (per utterance a
matrix with one i-vector per `ivector_period` frames: row i estimated at frame i * period),
`ivector_period` and `final.ie.id` (steps/nnet2/get_ivector_id.sh: the md5sum of the extractor's
final.ie). The nnet2 scripts read such a dir as the network's extra input (get_egs2.sh and
steps/nnet2/decode.sh --online-ivector-dir): frame t takes row t // period, which
`subsample-feats --n=-period` (each row repeated period times) + `paste-feats` spell in shell.
`OnlineIvectorDir` is that reading, with the checks that turn a wrong dir into one line. The script
also writes `conf/ivector_extractor.conf`, whose `--ivector-extractor=` line names the extractor used:
`OnlineIvectorDir.extractor_path`, which train-nnet2 records in the model so that export-model finds
the extractor unasked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError

EXTRACTOR_ID_FILE = "final.ie.id"
EXTRACTOR_CONF_FILE = "conf/ivector_extractor.conf"


def extractor_id(extractor_path):
    """The identity of an i-vector extractor file: the md5 of its bytes, as get_ivector_id.sh writes
    it into final.ie.id (a copy of the file, e.g. into a bundle, keeps it; a retrained one does not)."""
    path = Path(extractor_path)
    if path.is_dir():
        path = path / "final.ie"
    if not path.is_file():
        raise MissingFileError(f"{path}: no i-vector extractor; run kaldilite train-ivector-extractor")
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def row_of_frame(num_rows, num_frames, period, where="i-vectors", start=0):
    """(num_frames - start,) int64: the row of each frame t in start..num_frames-1, t // period (nnet2's
    rule for ivector_online.scp, `OnlineIvectorFeature`'s for a stream). The `num_rows` rows must cover
    every frame: at least ceil(num_frames / period) of them; more (an utterance cut short) are left unused."""
    needed = -(-int(num_frames) // int(period))
    if num_rows < needed:
        raise InputError(f"{where}: {num_rows} i-vector rows for {num_frames} frames at period {period} (need "
                         f"{needed}); were the i-vectors extracted from these features (same data dir, same "
                         "--ivector-period)?")
    return np.arange(int(start), int(num_frames), dtype=np.int64) // int(period)


def ivectors_of_frames(rows, num_frames, period, where="i-vectors"):
    """(num_frames, dim) float32: frame t's i-vector is rows[t // period] (`row_of_frame`)."""
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise InputError(f"{where}: i-vector rows of shape {rows.shape}, not a matrix; were the i-vectors extracted "
                         "with kaldilite extract-ivectors-online?")
    return np.ascontiguousarray(rows[row_of_frame(len(rows), num_frames, period, where)], dtype=np.float32)


class OnlineIvectorDir:
    """DIR/ivector_online.scp, DIR/ivector_period, DIR/final.ie.id (extract-ivectors-online's output).

    `rows(utt)`: the utterance's stored matrix; `frames(utt, num_frames)`: one row per frame;
    `dim`, `period`, `extractor_id` (None for a dir written before final.ie.id was), `extractor_path` (the
    --ivector-extractor of DIR/conf/ivector_extractor.conf; None without one).
    """

    def __init__(self, ivector_dir):
        from kaldilite.io.tables import read_scp

        self.path = Path(ivector_dir)
        self.scp_path = self.path / "ivector_online.scp"
        if not self.path.is_dir():
            raise MissingFileError(f"--online-ivector-dir {self.path}: no such directory; make it with kaldilite "
                                   "extract-ivectors-online")
        period_path = self.path / "ivector_period"
        for needed in (self.scp_path, period_path):
            if not needed.is_file():
                raise MissingFileError(f"{needed}: missing; --online-ivector-dir must be an output dir of kaldilite "
                                       "extract-ivectors-online")
        try:
            self.period = int(period_path.read_text().split()[0])
        except (ValueError, IndexError):
            raise InputError(f"{period_path}: must hold one positive integer (the i-vector period)") from None
        if self.period < 1:
            raise InputError(f"{period_path}: must hold one positive integer (the i-vector period)")
        id_path = self.path / EXTRACTOR_ID_FILE
        id_words = id_path.read_text().split() if id_path.is_file() else []
        self.extractor_id = id_words[0] if id_words else None
        conf_path = self.path / EXTRACTOR_CONF_FILE
        named = []
        if conf_path.is_file():
            from kaldilite.io.config import parse_config_lines

            with open(conf_path, encoding="utf-8") as handle:
                named = [value.strip() for _, name, value in parse_config_lines(handle, str(conf_path))
                         if name == "ivector-extractor"]
        self.extractor_path = Path(named[-1]) if named and named[-1] else None
        self.scp = {key: rx for _, key, rx in read_scp(self.scp_path)}
        if not self.scp:
            raise InputError(f"{self.scp_path}: empty; re-run extract-ivectors-online")
        self._dim = None

    @property
    def dim(self):
        if self._dim is None:
            self._dim = self.rows(next(iter(self.scp))).shape[1]
        return self._dim

    def known_extractor_id(self, fix):
        """`extractor_id`, or one line saying that final.ie.id is missing, ending in `fix`."""
        if self.extractor_id is None:
            raise InputError(f"{self.path / EXTRACTOR_ID_FILE}: missing, so the extractor of these i-vectors is "
                             f"unknown; {fix}")
        return self.extractor_id

    def check_covers(self, utterances, data_dir):
        """One line naming the scp when some of `utterances` (a list, of `data_dir`) have no i-vectors."""
        missing = [u for u in utterances if u not in self.scp]
        if missing:
            raise InputError(f"{self.scp_path}: no i-vectors for {len(missing)} of the {len(utterances)} "
                             f"utterances of {data_dir} (e.g. {missing[0]}); extract them on {data_dir} (kaldilite "
                             f"extract-ivectors-online {data_dir} <extractor-dir> <ivector-dir>)")

    def rows(self, utt):
        from kaldilite.io.tables import read_matrix

        rx = self.scp.get(utt)
        if rx is None:
            raise InputError(f"{self.scp_path}: no i-vectors for utterance {utt}; extract them on its data dir")
        return np.asarray(read_matrix(rx), dtype=np.float32)

    def frames(self, utt, num_frames):
        return ivectors_of_frames(self.rows(utt), num_frames, self.period, f"{self.scp_path} ({utt})")

    def stacked(self, utterances, num_frames):
        """The i-vectors of whole corpus of frames without a copy per frame: (rows, row_of_frame), rows
        the utterances' stored matrices one after the other (float32), row_of_frame[f] the row of frame f
        of the utterances' frames concatenated (`num_frames[k]` frames for utterances[k])."""
        blocks, index, start = [], [], 0
        for utt, count in zip(utterances, num_frames):
            rows = self.rows(utt)
            blocks.append(rows)
            index.append(start + row_of_frame(len(rows), count, self.period, f"{self.scp_path} ({utt})"))
            start += len(rows)
        if not blocks:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64)
        return np.concatenate(blocks), np.concatenate(index)

    def __repr__(self):
        return f"OnlineIvectorDir({os.fspath(self.path)!r}, period {self.period}, {len(self.scp)} utterances)"
