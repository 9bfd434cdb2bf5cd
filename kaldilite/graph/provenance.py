"""Which model a decoding graph belongs to: the record `mkgraph` writes, and the check every decoding verb runs.

A graph's input labels are transition-ids, and which pdf each context window uses was decided
by the tree the graph was built with. A model from another tree with the same pdf count decodes
such a graph without any error and produces garbage. Kaldi's scripts guard against this by
comparing files (steps/nnet2/decode.sh and friends run ``cmp $srcdir/tree $graphdir/../tree``);
here mkgraph writes ``GRAPH_DIR/model_id.txt`` (a text file beside the standard HCLG.fst,
words.txt, phones/ ... which stay as Kaldi has them) with SHA-256 checksums of

- the tree (its canonical JSON form), and
- the transition model's structure: topology and transition-state tuples (not the transition
  probabilities, which re-estimation changes while the graph stays valid),

and `check_graph_for_model` compares them with the model a verb is given. An nnet2 model copies
its GMM system's tree and transition model, so it matches that GMM's graphs. A graph without the
record (built before it existed) is accepted with a warning.

The second record is a decode dir's: ``DECODE_DIR/decoded_with.json`` (`write_decode_record`, written by
decode-commands beside measures.jsonl) names the model file and the graph dir the decodes were made
with, as given, with SHA-256 digests of their bytes (the model file; the graph's HCLG.fst, else HCLG.npz,
with words.txt and words/fillers.txt). A rejection threshold is on one model's score scale and one
grammar's: calibrate-rejection copies the record into the rule (``calibration.decoded_with``) and
export-model refuses a --model or graph whose digest differs (`rule_decoded_with_mismatch`). A decode dir
pooled from decodes with several graphs (the held-out commands) records their one model
(`pooled_decode_record`; bench/_report.merge_measures writes it, run.sh's DECODE_DIR/parts are read by
`decode_dir_record`). Kaldi keeps a
decode dir in its model's exp dir (``$dir/../final.mdl``) and needs no such record; here decodes of one
model also live elsewhere (the commands recipe's exp/<model>_online_cmvn, bench/rejection_slice.py's
settings).
"""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError
from kaldilite.utils.atomic import atomic_open

log = logging.getLogger(__name__)

RECORD_FILE = "model_id.txt"
_HEADER = "# kaldilite mkgraph: the tree and transition model this graph was built for (checked by decoders)"


def tree_checksum(tree):
    return hashlib.sha256(json.dumps(tree.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()


def transition_model_checksum(tm):
    return _structure_checksum(tm.topo, tm.tuples)


def _structure_checksum(topo, tuples):
    digest = hashlib.sha256(topo.to_text().encode("utf-8"))
    digest.update(np.asarray(tuples, dtype="<i4").reshape(-1, 4).tobytes())
    return digest.hexdigest()


def graph_record(tm, tree, *, model_path=None, lang_dir=None):
    """The record's fields: checksums to compare, paths to name in messages."""
    return {"tree": tree_checksum(tree), "transition_model": transition_model_checksum(tm),
            "num_pdfs": str(tm.num_pdfs), "model": str(model_path) if model_path else "",
            "lang": str(lang_dir) if lang_dir else ""}


def write_graph_record(directory, record):
    lines = [_HEADER] + [f"{key} {value}".rstrip() for key, value in record.items()]
    (Path(directory) / RECORD_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_graph_record(graph_dir):
    """The record of a graph dir as a dict, or None for a graph built without one."""
    path = Path(graph_dir) / RECORD_FILE
    if not path.is_file():
        return None
    record = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            record[key] = value.strip()
    return record


def _model_transition_checksum(model_path):
    """The transition-model checksum of a model file of any type (GMM or nnet2 share this storage:
    the topology text in the JSON header, the tuples as ``tm_tuples``), without loading the model."""
    from kaldilite.hmm.topology import Topology

    try:
        with np.load(model_path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["header"]).decode("utf-8"))
            tuples = npz["tm_tuples"]
        topo = Topology.from_text(header["topology"], source=f"{model_path} (topology)")
    except Exception as exc:  # noqa: BLE001 - any unreadable file: the model loader reports it properly later
        log.debug("%s: transition model not readable for the graph check (%s)", model_path, exc)
        return None, None
    num_pdfs = int(tuples[:, 2:].max()) + 1 if len(tuples) else 0
    return _structure_checksum(topo, tuples), num_pdfs


def check_graph_for_model(graph_dir, model_path, tree_path=None, *, transition_model=None):
    """Refuse to decode `graph_dir` with `model_path` when the graph was built from another tree or
    transition model. The tree is `tree_path`, else ``tree`` beside the model (skipped when absent).
    `transition_model`: the model's, when the verb has already loaded it (else its topology and
    tuples are read from the file; an nnet2 file older than format 5 keeps megabytes of JSON in
    that header). A graph without a record is accepted with a warning."""
    graph_dir, model_path = Path(graph_dir), Path(model_path)
    record = read_graph_record(graph_dir)
    if record is None:
        log.warning("%s: no %s (graph built by an older kaldilite): cannot check that it was built for %s's tree; "
                    "re-run `kaldilite mkgraph <lang-dir> %s %s` to record it", graph_dir, RECORD_FILE, model_path,
                    model_path.parent, graph_dir)
        return
    if transition_model is not None:
        tm_sum, num_pdfs = transition_model_checksum(transition_model), transition_model.num_pdfs
    else:
        tm_sum, num_pdfs = _model_transition_checksum(model_path)
    tree_path = Path(tree_path) if tree_path else model_path.parent / "tree"
    differs = []
    if tree_path.is_file() and record.get("tree"):
        from kaldilite.hmm.tree import ContextDependency

        if tree_checksum(ContextDependency.read(tree_path)) != record["tree"]:
            differs.append(f"tree {tree_path}")
    if tm_sum is not None and record.get("transition_model") and tm_sum != record["transition_model"]:
        differs.append(f"transition model ({num_pdfs} pdfs; the graph's has {record.get('num_pdfs', '?')})")
    if differs:
        built_from = f" (built for {record['model']})" if record.get("model") else ""
        lang = record.get("lang") or "<lang-dir>"
        raise InputError(f"{graph_dir / RECORD_FILE}: this graph{built_from} does not match {model_path}: "
                         f"{' and '.join(differs)} differ; decode with that model's own graph or rebuild it: "
                         f"kaldilite mkgraph {lang} {model_path.parent} {graph_dir}")


DECODE_RECORD_FILE = "decoded_with.json"


def file_sha256(path):
    """SHA-256 (hex) of a file's bytes. Model and graph files are written deterministically (the same
    model saved twice is the same bytes), so a copy or re-save of the same model has the same digest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_files(graph_dir):
    """The files of a graph dir that decide what a decode of it measures: HCLG.fst (Kaldi's graph; else our
    compiled HCLG.npz), words.txt and words/fillers.txt (which words mean rejected: two graphs can be one FST
    and differ there), those present; [] without HCLG.fst or HCLG.npz."""
    from kaldilite.lang.langdir import FILLERS_FILE

    graph_dir = Path(graph_dir)
    hclg = next((graph_dir / n for n in ("HCLG.fst", "HCLG.npz") if (graph_dir / n).is_file()), None)
    if hclg is None:
        return []
    return [hclg] + [graph_dir / name for name in ("words.txt", FILLERS_FILE) if (graph_dir / name).is_file()]


def graph_sha256(graph_dir):
    """SHA-256 over `graph_files` (each file's path within the dir and its bytes), or None without a graph."""
    graph_dir = Path(graph_dir)
    files = graph_files(graph_dir)
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(graph_dir)}\0{file_sha256(path)}\0".encode("utf-8"))
    return digest.hexdigest()


def decode_record(model_path, graph_dir):
    """The model and graph a decode is made with: paths as given and the digests of their files."""
    return {"model": str(model_path), "model_sha256": file_sha256(model_path), "graph": str(graph_dir),
            "graph_files": [str(p.relative_to(Path(graph_dir))) for p in graph_files(graph_dir)],
            "graph_sha256": graph_sha256(graph_dir)}


def write_decode_record(decode_dir, record):
    with atomic_open(Path(decode_dir) / DECODE_RECORD_FILE) as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_decode_record(decode_dir):
    """DECODE_DIR's record (`write_decode_record`) as a dict, or None for a decode dir without one (made
    before decodes recorded their model, or not by decode-commands)."""
    path = Path(decode_dir) / DECODE_RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); delete it and re-decode") from None
    if not isinstance(record, dict) or not record.get("model_sha256"):
        raise InputError(f"{path}: no model_sha256 (not decode-commands' record); delete it and re-decode")
    return record


def refuse_another_model(record, where, decode_dir, first, first_dir):
    """Refuse, in one line naming `where`, pooling `decode_dir` (its record `record`) with `first_dir` (`first`)
    when they were decoded with different models: one threshold is on one model's score scale."""
    if record["model_sha256"] != first["model_sha256"]:
        raise InputError(f"{where}: decoded with {record['model']} but {first_dir} with {first['model']} (another "
                         f"sha256); pool decodes of one model: re-decode {decode_dir} with --model {first['model']}")


POOLED_PARTS = "parts"  # DECODE_DIR/parts/*: the decodes a pooled decode dir's measures were gathered from


def pooled_decode_record(part_dirs):
    """The record of a decode dir pooled from the decode dirs `part_dirs`, each made with its own graph (the
    commands recipe's held-out commands: each command's clips decoded with a grammar without it, their
    measures.jsonl concatenated): their model (path and digest) when every part recorded the same one, and
    each part's graph; None when a part recorded nothing. Parts decoded with different models are refused:
    one threshold is on one model's score scale."""
    records = [(Path(d), read_decode_record(d)) for d in part_dirs]
    if not records or any(record is None for _, record in records):
        return None
    first_dir, first = records[0]
    for part, record in records[1:]:
        refuse_another_model(record, part / DECODE_RECORD_FILE, part, first, first_dir)
    return {"model": first["model"], "model_sha256": first["model_sha256"],
            "parts": [{"decode_dir": str(part), "graph": record.get("graph"),
                       "graph_sha256": record.get("graph_sha256")} for part, record in records]}


def decode_dir_record(decode_dir):
    """DECODE_DIR's record (`read_decode_record`), else, for a dir pooled from DECODE_DIR/parts/* without one
    of its own (the commands recipe's decode_heldout_commands, merged by run.sh), its parts' (`pooled_decode_record`:
    refused when they were decoded with different models); None when neither is recorded."""
    record = read_decode_record(decode_dir)
    parts = Path(decode_dir) / POOLED_PARTS
    if record is not None or not parts.is_dir():
        return record
    return pooled_decode_record(sorted(d for d in parts.iterdir() if (d / "measures.jsonl").is_file()))


def rule_decoded_with_mismatch(record, model_path, graph_dir):
    """What differs between a rule's calibration decodes (`record`: its ``calibration.decoded_with``) and the
    model file and graph dir to ship it with, as a phrase for a message, or None when both digests match (a
    graph dir without HCLG.fst/npz, or a record without the graph's digest, is not compared)."""
    digest = file_sha256(model_path)
    if digest != record["model_sha256"]:
        return (f"calibrated on decodes of {record['model']} (sha256 {record['model_sha256'][:12]}), not of "
                f"--model {model_path} ({digest[:12]})")
    theirs = graph_sha256(graph_dir)
    if record.get("graph_sha256") and theirs is not None and theirs != record["graph_sha256"]:
        return (f"calibrated on decodes with the graph {record['graph']} (sha256 {record['graph_sha256'][:12]} of "
                f"its {', '.join(record.get('graph_files', []))}), not {graph_dir} ({theirs[:12]})")
    return None


__all__ = ["RECORD_FILE", "DECODE_RECORD_FILE", "check_graph_for_model", "rule_decoded_with_mismatch",
           "decode_record", "decode_dir_record", "pooled_decode_record", "refuse_another_model", "file_sha256",
           "graph_files", "graph_sha256", "read_decode_record", "write_decode_record",
           "graph_record", "read_graph_record", "write_graph_record", "tree_checksum", "transition_model_checksum"]
