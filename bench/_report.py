"""Write a benchmark's figures into its own section of BENCHMARKS.md.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`;
re-running it replaces only that section (atomically), so benchmarks never clobber each other.
A hand-written reading of the figures survives the re-run when it is kept between
`<!-- reading -->` and `<!-- /reading -->` inside the section (see `update_section`).
"""

import datetime
import platform
import re
from pathlib import Path

from kaldilite.utils import atomic_open

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine_line():
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {datetime.date.today()}"


READING_BEGIN, READING_END = "<!-- reading -->", "<!-- /reading -->"
_READING = re.compile(re.escape(READING_BEGIN) + r".*?" + re.escape(READING_END), re.S)


def update_section(name, markdown):
    """Replace (or append) the section for benchmark `name` with `markdown`.

    The old section's reading blocks (`<!-- reading -->` ... `<!-- /reading -->`: what a person wrote
    about the figures) are carried to the end of the new section, unless `markdown` brings reading
    blocks of its own (a bench that writes its reading itself replaces it). A carried reading discusses
    the figures it was written for: the section's machine line dates the figures now above it.
    """
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    old = pattern.search(text)
    body = markdown.rstrip()
    if old and not _READING.search(body):
        readings = _READING.findall(old.group(0))
        if readings:
            body += "\n\n" + "\n\n".join(readings)
    block = f"{begin}\n{body}\n{end}"
    text = pattern.sub(lambda _: block, text) if old else text.rstrip() + "\n\n" + block + "\n"
    with atomic_open(BENCHMARKS) as out:
        out.write(text)


QUIET_LOAD = 1.5  # load average at a timing bench's start above which its figures stay out of BENCHMARKS.md


def update_section_if_quiet(name, markdown, load_before):
    """`update_section`, unless the machine was busy when the bench started (load average `load_before`
    >= QUIET_LOAD): then say so and leave BENCHMARKS.md alone. Returns whether the section was written."""
    if load_before >= QUIET_LOAD:
        print(f"(load average {load_before:.1f} at the start: BENCHMARKS.md not updated; re-run on a quiet machine)")
        return False
    update_section(name, markdown)
    return True


def modules_at(rev, package, names, as_name):
    """kaldilite/PACKAGE/NAME.py of each of `names` at git revision `rev`, as the modules AS_NAME.NAME of a
    package AS_NAME (returned): the old code a speed bench runs beside the new one in the same process. Their
    imports of each other (`from kaldilite.PACKAGE.NAME import`) are redirected to these copies; anything
    else they import is today's kaldilite.

    The copies are real files, AS_NAME/NAME.py in a temporary directory removed at exit, so numba's
    ``cache=True`` kernels of the old code compile and cache as they did in the package (numba refuses to
    cache a function whose source has no file; its cache goes to that directory's __pycache__, fresh each
    process, so a bench's warm-up call compiles the old kernels as today's load theirs, both outside the
    timings), and tracebacks show the old lines. So even under NUMBA_CACHE_DIR, which would otherwise keep
    a new AS_NAME_<hash> cache folder of each run's copies there for good."""
    import atexit
    import importlib.util
    import re
    import shutil
    import subprocess
    import sys
    import tempfile
    import types

    from numba.core import config as numba_config

    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="kaldilite-" + re.sub(r"[^\w.-]", "_", rev) + "-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    folder = tmp / as_name
    folder.mkdir()
    old = types.ModuleType(as_name)
    old.__path__ = [str(folder)]
    sys.modules[as_name] = old
    for name in names:
        where = f"kaldilite/{package}/{name}.py"
        source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{where}"], check=True, capture_output=True,
                                text=True).stdout
        for other in names:
            source = source.replace(f"kaldilite.{package}.{other} import", f"{as_name}.{other} import")
        path = folder / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"{as_name}.{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        cache_dir, numba_config.CACHE_DIR = numba_config.CACHE_DIR, ""  # (read as each kernel is decorated)
        try:
            spec.loader.exec_module(module)
        finally:
            numba_config.CACHE_DIR = cache_dir
        setattr(old, name, module)
    return old


def children_cpu():
    """CPU seconds (user + system) of this process's finished, waited-for children so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command, cwd=None, env=None, check=True):
    """Run `command` -> (wall seconds, CPU seconds of it and its waited-for descendants, CompletedProcess
    with its text stdout and stderr).

    CPU, not wall, is what a benchmark on a shared machine can trust. With `check`, a failing
    command ends the benchmark with the tail of its output."""
    import subprocess
    import sys
    import time

    wall, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if check and out.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall, cpu, out


def heldout_commands_dir(slice_data, commands, dest):
    """DEST: the commands of the data dir SLICE_DATA, text `heldout_<command>` (spaces as `_`), as the
    commands recipe's data/heldout_commands: the held-out-commands set its scoring reads
    (`write_data_subset`: atomic, rewritten only when its content would change)."""
    from kaldilite.io.datadir import DataDir

    commands = set(commands)
    text = DataDir.load(slice_data).text
    utts = sorted(u for u, t in text.items() if t.strip() in commands)
    return write_data_subset(slice_data, dest, utts, {u: "heldout_" + text[u].strip().replace(" ", "_") for u in utts})


def write_if_changed(path, text):
    """Write TEXT to PATH atomically, and only when PATH does not already hold it (runs sharing an output
    dir rewrite nothing another one may be reading)."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    with atomic_open(path) as handle:
        handle.write(text)
    return path


def write_data_subset(src, dest, utts, text=None):
    """DEST: the data dir SRC restricted to the utterances UTTS (utils/subset_data_dir.sh --utt-list), its
    text replaced by the mapping TEXT when given. Built beside DEST, then compared file by file with DEST:
    left alone when equal, else put in DEST's place in one rename (`atomic_dir`, nothing of the old DEST
    carried over). So runs sharing DEST (two bench runs with one --out) never see it half-written, nor
    rewritten under a decode that reads it, and a stale DEST (another slice) is replaced whole."""
    import filecmp
    import os
    import shutil
    import tempfile

    from kaldilite.io.datadir import DataDir, subset_data_dir
    from kaldilite.utils.atomic import atomic_dir

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def files(folder):
        return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, names in os.walk(folder) for f in names)

    def same(built):
        return dest.is_dir() and files(built) == files(dest) and all(
            filecmp.cmp(built / f, dest / f, shallow=False) for f in files(built))

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.build.") as tmp:
        built = subset_data_dir(src, Path(tmp) / "data", utt_list=list(utts))
        if text is not None:
            data = DataDir.load(built)
            data.text = {u: text[u] for u in data.text}
            data.save(built)
        if same(built):
            return dest
        try:
            with atomic_dir(dest, owned=files(dest) if dest.is_dir() else ()) as new:
                for name in files(built):
                    os.makedirs(os.path.dirname(os.path.join(new, name)), exist_ok=True)
                    shutil.copyfile(built / name, os.path.join(new, name))
        except OSError:  # another run put its DEST there first (the rename found it): fine if it is this one
            if not same(built):
                raise RuntimeError(f"{dest}: another run wrote it meanwhile with another content (runs sharing an "
                                   "output dir must build it from the same data)") from None
    return dest


def merge_measures(parts, merged):
    """MERGED (a measures.jsonl): the lines of each of the decode dirs PARTS' measures.jsonl, sorted,
    written atomically (its presence means the parts are all decoded); beside it the parts' one model
    (decoded_with.json, `pooled_decode_record`: refused when the parts were decoded with different models,
    none when a part recorded nothing), which calibrate-rejection checks a pool against."""
    from kaldilite.graph.provenance import DECODE_RECORD_FILE, pooled_decode_record, write_decode_record

    record = pooled_decode_record(parts)
    lines = sorted(line for part in parts for line in (Path(part) / "measures.jsonl").read_text().splitlines())
    merged = Path(merged)
    merged.parent.mkdir(parents=True, exist_ok=True)
    (merged.parent / DECODE_RECORD_FILE).unlink(missing_ok=True)  # (an earlier merge's)
    if record is not None:
        write_decode_record(merged.parent, record)
    with atomic_open(merged) as out:
        out.write("".join(f"{line}\n" for line in lines))


def in_domain_figures(slice_data, exp, heldout, commands_file, rule, target_fa=0.05):
    """One exp dir (decode_dev = SLICE_DATA, decode_heldout_commands = HELDOUT) under the in-domain
    rejection protocol, by the recipe's own scoring (`commands_results_rows`, HELDOUT the one
    calibration set): dict of acc (command accuracy, RULE's score 2-fold cross-calibrated by speaker
    for `target_fa`), fa (pooled over the slice's fillers + noise + held-out commands), counts,
    thresholds, no_threshold (fillers + garbage, no threshold), forced (commands-only grammar,
    rejection off; None without EXP/decode_dev_norej), eer (over the cross-calibrated scores) and
    oracle, oracle_fa (one threshold calibrated on the whole pool: the best the score can do)."""
    from kaldilite.cli.commands import commands_results_rows

    rows = commands_results_rows(slice_data, [exp], commands_file, target_fa, [("heldout_commands", heldout)],
                                 rule=rule)
    calibrated, no_threshold, forced = rows[0], rows[1], rows[2] if len(rows) > 2 else None
    assert forced is None or forced["setting"].startswith("rejection off"), forced["setting"]
    s, held = calibrated["scores"], calibrated["oov"]["heldout_commands"]
    accepted = s.unknown_accepted + s.silence_accepted + held.unknown_accepted
    return dict(acc=s.accuracy, fa=accepted / (s.num_unknown + s.num_silence + held.num_unknown),
                no_threshold=no_threshold["scores"].accuracy, forced=forced and forced["scores"].accuracy,
                counts=f"{s.unknown_accepted}/{s.num_unknown} fillers, {s.silence_accepted}/{s.num_silence} noise, "
                       f"{held.unknown_accepted}/{held.num_unknown} held-out",
                thresholds=calibrated["note"].removeprefix("thresholds "), eer=calibrated["eer"],
                oracle=calibrated["rule"].calibration["command_accuracy"],
                oracle_fa=calibrated["rule"].calibration["false_accept_rate"])
