"""A decoding verb reads its model file's arrays once per process (`kaldilite.utils.load_once`).

The verb's checks and the jobs that run in its process (--nj 1) or are forked from it share one
read; a file rewritten in between is read again.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.utils.load_once import forget_loaded, load_once

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "train"))  # synthetic_setup, shared by the synthetic corpora


def test_load_once_keeps_one_copy_per_unchanged_file_and_loader(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("a")
    calls = []

    def loader(p):
        calls.append(p)
        return Path(p).read_text()

    def other(p):
        return Path(p).read_text() + "!"

    forget_loaded()
    first = load_once(path, loader)
    assert load_once(str(path), loader) is first and calls == [str(path)]
    assert load_once(path, other) == "a!"  # another loader: its own copy
    path.write_text("bb")  # rewritten (a retrained model): read again
    assert load_once(path, loader) == "bb" and len(calls) == 2
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # same size, newer: read again
    assert load_once(path, loader) == "bb" and len(calls) == 3
    forget_loaded()


def test_headers_asked_in_between_never_evict_a_model(tmp_path, monkeypatch):
    """A SAT decode keeps two models (final.alimdl, final.mdl) and asks model headers of many files
    in between (`model_header`): the models must stay read once. Loader calls counted by hand."""
    import kaldilite.gmm.model as gmm_model
    from kaldilite.online.bundle import model_header
    from kaldilite.utils.load_once import MAX_ENTRIES

    files = []
    for k in range(MAX_ENTRIES["model"] + MAX_ENTRIES["header"] + 3):
        files.append(tmp_path / f"{k}.mdl")
        files[-1].write_text(str(k))
    model_reads, header_reads = [], []

    def load_model(p):
        model_reads.append(os.path.basename(p))
        return Path(p).read_text()

    def read_header(p):
        header_reads.append(os.path.basename(p))
        return {"model_type": "gmm"}

    monkeypatch.setattr(gmm_model, "read_model_header", read_header)
    forget_loaded()
    alimdl, mdl = files[:2]
    for _ in range(3):  # three utterances, each asking both models and the header of every file
        assert load_once(alimdl, load_model) == "0" and load_once(mdl, load_model) == "1"
        for path in files:
            assert model_header(path) == {"model_type": "gmm"}
    assert model_reads == ["0.mdl", "1.mdl"]
    # the header cache is bounded on its own: more files than it keeps are read again, each pass
    assert len(header_reads) == 3 * len(files)
    header_reads.clear()
    for path in files[:MAX_ENTRIES["header"]]:
        model_header(path)
    for path in files[:MAX_ENTRIES["header"]]:
        model_header(path)
    assert len(header_reads) == MAX_ENTRIES["header"]  # as many as it keeps: once each
    # and the model cache keeps its own bound: one model more than it holds pushes out the oldest
    for path in files[2:MAX_ENTRIES["model"]]:  # full
        load_once(path, load_model)
    load_once(alimdl, load_model)
    assert model_reads.count("0.mdl") == 1
    load_once(files[MAX_ENTRIES["model"]], load_model)  # evicts 1.mdl, the least recently used
    load_once(mdl, load_model)
    assert model_reads.count("1.mdl") == 2 and model_reads.count("0.mdl") == 1
    with pytest.raises(ValueError, match="unknown kind"):
        load_once(mdl, load_model, kind="lattice")
    forget_loaded()


def _nnet_fixtures():
    spec = importlib.util.spec_from_file_location("_read_once_nnet_cli", TESTS / "nnet" / "test_nnet_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_nnet = _nnet_fixtures()
mono_system = _nnet.mono_system
nnet_system = _nnet.nnet_system


def _count_reads(monkeypatch, module, name):
    """Replace module.name by a wrapper that records each path it is called with; -> that list."""
    reads = []
    real = getattr(module, name)

    def counting(path, *args, **kwargs):
        reads.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return reads


@pytest.mark.parametrize("verb", ["decode-nnet2", "decode-commands"])
def test_a_decode_with_one_job_reads_the_nnet2_model_once(nnet_system, tmp_path, monkeypatch, verb):
    import kaldilite.nnet.model as nnet_model

    tmp, _, _ = nnet_system
    reads = _count_reads(monkeypatch, nnet_model, "read_model_file")
    forget_loaded()
    model = tmp / "nnet2" / "final.mdl"
    result = CliRunner().invoke(cli, [verb, "--nj", "1", "--acwt", "1.0", "--model", str(model),
                                      str(tmp / "mono" / "graph"), str(tmp / "data"), str(tmp_path / "decode")])
    assert result.exit_code == 0, result.output
    assert reads == [str(model)]  # decode-nnet2 read it twice before: the verb's checks, then the job
    forget_loaded()


def test_a_gmm_decode_with_one_job_reads_the_model_once(mono_system, tmp_path, monkeypatch):
    import kaldilite.gmm.model as gmm_model

    tmp, _ = mono_system
    loads = _count_reads(monkeypatch, gmm_model, "load_model")
    forget_loaded()
    for verb, out in (("decode", "d1"), ("decode-commands", "d2")):
        result = CliRunner().invoke(cli, [verb, "--nj", "1", "--model", str(tmp / "mono" / "final.mdl"),
                                          str(tmp / "mono" / "graph"), str(tmp / "data"), str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    # decode: the job's read; decode-commands: the verb's check (load_scoring_model), reused by its job
    assert loads == [str(tmp / "mono" / "final.mdl")] * 2
    forget_loaded()


def test_decode_commands_jobs_ask_the_verbs_read_of_the_model_header(mono_system, tmp_path, monkeypatch):
    """decoding_kind (sat / adapted_nnet / single) and the model type are asked by the verb and again
    by its job (here in its process, --nj 1; forked jobs inherit the copy): one header read."""
    import kaldilite.gmm.model as gmm_model

    tmp, _ = mono_system
    reads = _count_reads(monkeypatch, gmm_model, "read_model_header")
    forget_loaded()
    model = tmp / "mono" / "final.mdl"
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--model", str(model),
                                      str(tmp / "mono" / "graph"), str(tmp / "data"), str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    from kaldilite.train.decode_commands import decoding_kind

    assert decoding_kind(model) == "single" and reads.count(str(model)) == 1
    forget_loaded()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
