"""Start-up cost of the command-line tool: a verb imports only what it needs, and decoding jobs
forked from `kaldilite decode` inherit the decoder's compiled code instead of loading it again.

Each check runs a fresh interpreter (what a recipe stage does) and looks at what it loaded.
"""

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import click
from click.testing import CliRunner

import kaldilite.cli
from kaldilite.cli import VERBS
from kaldilite.io.tables import read_int_vectors

HEAVY = ("numba", "scipy", "matplotlib", "sounddevice", "soundfile", "kaldi_io", "pynini")
UNNEEDED_BY_MKGRAPH = ("kaldilite.gmm.am", "kaldilite.feat", "kaldilite.lang.arpa", "kaldilite.lang.grammar",
                       "kaldilite.lang.prepare", "kaldilite.lang.validate", "kaldilite.train", "kaldilite.decode")


def fresh_python(code, **kwargs):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, **kwargs)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def declared_verbs():
    """{verb: (module, first sentence of its help or None when hidden)} from every cli module's COMMANDS."""
    declared = {}
    for info in pkgutil.iter_modules(kaldilite.cli.__path__):
        module = importlib.import_module(f"kaldilite.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            assert command.name not in declared, f"{command.name} declared twice"
            assert not command.short_help, "the table keeps the help's first sentence, not short_help"
            declared[command.name] = (info.name, None if command.hidden else command.get_short_help_str(10 ** 6))
    return declared


def test_the_verb_table_lists_exactly_the_verbs_the_modules_declare():
    declared = declared_verbs()
    fixes = [f"    {name!r}: {entry!r}," for name, entry in sorted(declared.items()) if VERBS.get(name) != entry]
    assert not fixes, "kaldilite/cli/__init__.py VERBS needs these lines:\n" + "\n".join(fixes)
    assert set(VERBS) == set(declared), f"VERBS lists verbs no module declares: {sorted(set(VERBS) - set(declared))}"
    assert len(VERBS) > 40 and sum(entry[1] is None for entry in VERBS.values()) == 5  # data's Kaldi aliases


def test_help_lists_every_verb_as_click_would_without_importing_any_verb_module():
    """`kaldilite --help` from the table is the listing click prints with every module loaded."""
    out = fresh_python(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kaldilite.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'], prog_name='kaldilite', terminal_width=100)\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith('kaldilite.cli.')))\n"
        "print(result.output, end='')\n")
    loaded, lazy_help = out.split("\n", 1)
    assert loaded == "[]"
    eager = click.Group("cli", callback=kaldilite.cli.cli.callback, params=kaldilite.cli.cli.params,
                        help=kaldilite.cli.cli.help, context_settings=kaldilite.cli.cli.context_settings)
    for name, (module, _) in declared_verbs().items():
        eager.add_command(next(c for c in importlib.import_module(f"kaldilite.cli.{module}").COMMANDS if c.name == name))
    eager_help = CliRunner().invoke(eager, ["--help"], prog_name="kaldilite", terminal_width=100).output
    assert lazy_help == eager_help
    assert "mkgraph " in lazy_help and "  validate-data-dir" not in lazy_help  # hidden aliases stay hidden


def test_each_verb_loads_only_its_own_module_in_a_fresh_process():
    verbs = sorted(VERBS)
    found = json.loads(fresh_python(
        "import json, subprocess, sys\n"
        f"names = {verbs!r}\n"
        "result = {}\n"
        "for name in names:\n"
        "    code = ('import sys, click; from kaldilite.cli import cli; '\n"
        "            f'command = cli.get_command(click.Context(cli), {name!r}); '\n"
        "            'print(command.name, command.callback.__module__ if command.callback else \"-\", '\n"
        "            'sorted(m for m in sys.modules if m.startswith(\"kaldilite.cli.\")))')\n"
        "    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout\n"
        "    resolved, callback_module, modules = out.split(' ', 2)\n"
        "    result[name] = [resolved, callback_module, eval(modules)]\n"
        "print(json.dumps(result))\n"))
    for name, (resolved, callback_module, modules) in found.items():
        assert resolved == name
        assert modules == [f"kaldilite.cli.{VERBS[name][0]}"], (name, modules)
        assert callback_module in ("-", f"kaldilite.cli.{VERBS[name][0]}"), (name, callback_module)
    unknown = subprocess.run([sys.executable, "-m", "kaldilite", "no-such-verb"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "No such command 'no-such-verb'" in unknown.stderr


def test_mkgraph_builds_the_graph_without_numba_or_scipy_or_blas_threads(digits_system, tmp_path):
    """mkgraph loads none of the heavy packages nor the kaldilite modules it does not use, numpy's OpenBLAS starts no worker threads (the
    process ends with one thread, where numpy alone starts one per core), and the exit skips
    garbage-collecting what is left."""
    graph = tmp_path / "graph"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    loaded = fresh_python(
        "import os, sys\n"
        "from kaldilite.cli import main\n"
        f"sys.argv = ['kaldilite', 'mkgraph', {str(digits_system / 'data/lang_digits')!r}, "
        f"{str(digits_system / 'exp/mono')!r}, {str(graph)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), 'numpy' in sys.modules)\n"
        f"print('UNNEEDED', sorted(m for m in sys.modules if m.startswith({UNNEEDED_BY_MKGRAPH!r})))\n"
        "print('THREADS', len(os.listdir('/proc/self/task')))\n"
        "import gc\nprint('FROZEN', gc.get_freeze_count() > 1000)\n", env=env)
    assert (graph / "HCLG.fst").is_file()
    assert loaded.splitlines()[-4] == "LOADED [] True"
    # nor the GMMs, the feature code, or the lang layer's compilers (it reads the model's transitions
    # with load_transition_model and the lang dir with LangDir)
    assert loaded.splitlines()[-3] == "UNNEEDED []"
    assert loaded.splitlines()[-2] == "THREADS 1"
    # the objects left at exit are hidden from the collector (saves the exit's GC passes)
    assert loaded.splitlines()[-1] == "FROZEN True"
    if os.cpu_count() > 1:  # the check above can fail: numpy alone starts OpenBLAS threads
        assert fresh_python("import os, numpy\nprint(len(os.listdir('/proc/self/task')))\n", env=env).strip() != "1"


def subset_data_dir(source, target, per_speaker=4):
    """The first utterances of each speaker of a data dir with features (Kaldi text files)."""
    target.mkdir()
    utt2spk = dict(line.split() for line in (source / "utt2spk").read_text().splitlines())
    keep = []
    for speaker in sorted(set(utt2spk.values())):
        keep += sorted(u for u, s in utt2spk.items() if s == speaker)[:per_speaker]
    for name in ("feats.scp", "text", "utt2spk"):
        lines = [line for line in (source / name).read_text().splitlines() if line.split(maxsplit=1)[0] in keep]
        (target / name).write_text("\n".join(lines) + "\n")
    speakers = sorted({utt2spk[u] for u in keep})
    (target / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in keep if utt2spk[u] == s)}\n" for s in speakers))
    cmvn = [line for line in (source / "cmvn.scp").read_text().splitlines() if line.split()[0] in speakers]
    (target / "cmvn.scp").write_text("\n".join(cmvn) + "\n")
    return len(speakers)


def test_forked_decode_jobs_inherit_the_decoders_compiled_code(digits_system, tmp_path):
    """With --nj 2 the jobs are forked after the parent has loaded the decoder's numba code, so
    their logs show no numba cache loads (each used to load it again: ~0.4 s of CPU per job);
    and they decode exactly what one in-process job decodes."""
    data = tmp_path / "test"
    assert subset_data_dir(digits_system / "data/test", data) == 2
    hyps = {}
    for nj in (1, 2):
        decode_dir = tmp_path / f"decode_nj{nj}"
        out = subprocess.run([sys.executable, "-m", "kaldilite", "decode", "--nj", str(nj), "--acwt", "0.1",
                              "--model", str(digits_system / "exp/mono/final.mdl"),
                              str(digits_system / "exp/mono/graph"), str(data), str(decode_dir)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "NUMBA_DEBUG_CACHE": "1", "OPENBLAS_NUM_THREADS": "1"})
        assert out.returncode == 0, out.stderr[-2000:]
        hyps[nj] = (decode_dir / "hyp.txt").read_text()
        if nj == 2:
            logs = [(decode_dir / "log" / f"decode.{k}.log").read_text() for k in (1, 2)]
            loads = [line for log in logs for line in log.splitlines() if "[cache]" in line and "decoder." in line]
            assert loads == []
            assert "[cache] index loaded" in out.stdout  # the parent loaded it (the check above can fail)
    assert hyps[1] == hyps[2] and len(hyps[1].splitlines()) == 8


def test_forked_align_jobs_inherit_the_aligners_compiled_code(digits_system, tmp_path):
    """`kaldilite align --nj 2` loads the aligner's numba code once, before forking its jobs (their
    logs show no cache loads), and writes exactly the alignments one in-process job writes."""
    data = tmp_path / "train"
    assert subset_data_dir(digits_system / "data/train", data) == 4
    alignments = {}
    for nj in (1, 2):
        ali_dir = tmp_path / f"ali_nj{nj}"
        out = subprocess.run([sys.executable, "-m", "kaldilite", "align", "--nj", str(nj), str(data),
                              str(digits_system / "data/lang"), str(digits_system / "exp/mono"), str(ali_dir)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "NUMBA_DEBUG_CACHE": "1", "OPENBLAS_NUM_THREADS": "1"})
        assert out.returncode == 0, out.stderr[-2000:]
        alignments[nj] = {utt: list(ali) for k in range(1, nj + 1)
                          for utt, ali in read_int_vectors(str(ali_dir / f"ali.{k}.gz"))}
        if nj == 2:
            logs = [(ali_dir / "log" / f"align.{k}.log").read_text() for k in (1, 2)]
            assert all("aligned 8 utterances, 0 failed" in log for log in logs)
            loads = [line for log in logs for line in log.splitlines() if "[cache]" in line and "decoder." in line]
            assert loads == []
            assert "[cache] index loaded" in out.stdout  # the parent loaded it (the check above can fail)
    assert alignments[1] == alignments[2] and len(alignments[1]) == 16
