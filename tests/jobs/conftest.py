"""Fixtures for the job backends: a one-node Slurm cluster on localhost, and a small real corpus.

`slurm_cluster` installs Debian's slurm-wlm and munge when they are missing (as root, with
apt-get), writes a minimal slurm.conf into a temp dir (this host as the only node, its real
CPU count and memory, free ports, state and spool dirs in the temp dir, munge authentication
through a private munged socket), starts munged, slurmctld and slurmd in the foreground as
children of the test process, waits until `sinfo` reports the node idle and points
`SLURM_CONF` at the config while the tests of the module run. At the end it stops the daemons by their pids.
If any of that fails the test FAILS with the reason: a skipped cluster test would prove nothing.

`fsdd_subset`: four FSDD speakers (prepare-fsdd's independent train split, three takes per digit
per speaker: 120 utterances) and a lang dir for zero..nine, built once per session.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_PACKAGES = ("slurm-wlm", "munge")
_DAEMONS = ("munged", "slurmctld", "slurmd")


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: starts a one-node Slurm cluster on localhost (installs slurm-wlm, "
                                       "munge when missing; needs root)")


def _which(name):
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)),
                                      None)


def _install_slurm():
    """apt-get install slurm-wlm munge when a daemon is missing; returns a reason string on failure."""
    if all(_which(name) for name in _DAEMONS + ("sbatch", "sinfo", "mungekey")):
        return None
    if os.geteuid() != 0:
        return (f"Slurm is not installed and installing it needs root: apt-get install {' '.join(_PACKAGES)} "
                "(or run the tests as root, as CI does)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *_PACKAGES]):
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return f"{' '.join(command)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
    missing = [name for name in _DAEMONS + ("sbatch", "sinfo", "mungekey") if not _which(name)]
    return f"installed {' '.join(_PACKAGES)} but {missing} are still missing" if missing else None


def _die_with_parent():
    """In the daemon before exec: the kernel sends it SIGTERM when the test process dies, so a
    pytest killed by a timeout (no fixture finalizer runs then) leaves no cluster behind."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb():
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


def _slurm_conf(root, munge_socket):
    # RealMemory a little below the total: slurmd drains a node that reports less than configured
    return f"""# one-node test cluster written by tests/jobs/conftest.py
ClusterName=kaldilite
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(_memory_mb() * 0.9)} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    def __init__(self, root):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.processes = []
        self.env = None

    def start(self):
        root = self.root
        for sub in ("state", "spool", "munge"):
            (root / sub).mkdir(mode=0o700)
        key, munge_socket = root / "munge" / "munge.key", root / "munge" / "munge.sock"
        self._check([_which("mungekey"), "--create", f"--keyfile={key}", "--bits=1024"], "mungekey")
        self.conf.write_text(_slurm_conf(root, munge_socket))
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._spawn([_which("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={munge_socket}",
                     f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
                     f"--seed-file={root}/munge/munged.seed"], "munged")
        self._wait_for(lambda: munge_socket.exists(), 10, "munged did not create its socket", "munge/munged.log")
        self._spawn([_which("slurmctld"), "-D", "-i", "-f", str(self.conf)], "slurmctld")
        self._spawn([_which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)], "slurmd")
        self._wait_for(self._node_idle, 60, "the node did not become idle in sinfo", "slurmd.log")

    def _check(self, command, name):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")

    def _spawn(self, command, name):
        log = open(self.root / f"{name}.out", "w")
        self.processes.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                                      start_new_session=True, preexec_fn=_die_with_parent)))

    def _node_idle(self):
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}: "
                                   f"{self._tail(f'{name}.out')} {self._tail(f'{name}.log')}")
        proc = subprocess.run([_which("sinfo"), "--noheader", "--format=%t"], capture_output=True, text=True,
                              env=self.env, timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def _wait_for(self, condition, seconds, what, log_name):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {seconds} s; {log_name}: {self._tail(log_name)}")

    def _tail(self, name, lines=5):
        try:
            return " | ".join((self.root / name).read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running one-node Slurm cluster; SLURM_CONF points at it while the module's tests run
    (module scope: the daemons stop as soon as the Slurm tests are done, not at the end of the suite)."""
    started = time.perf_counter()
    reason = _install_slurm()
    if reason:
        pytest.fail(f"cannot start a Slurm cluster for the slurm tests: {reason}", pytrace=False)
    cluster = SlurmCluster(tempfile.mkdtemp(prefix="kl-slurm-"))  # short path: munge's socket name is limited
    saved = os.environ.get("SLURM_CONF")
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 -- the reason is the test result
        cluster.stop()
        pytest.fail(f"cannot start a Slurm cluster for the slurm tests (files in {cluster.root}): {exc}",
                    pytrace=False)
    os.environ["SLURM_CONF"] = str(cluster.conf)
    cluster.startup_seconds = time.perf_counter() - started
    try:
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        shutil.rmtree(cluster.root, ignore_errors=True)


# ---------------------------------------------------------------------------- a small real corpus
@pytest.fixture(scope="session")
def fsdd_subset(tmp_path_factory, fsdd_dir):
    """(data_dir with 4 speakers x 10 digits x 3 takes, lang_dir): built with the kaldilite verbs."""
    from click.testing import CliRunner

    from kaldilite.cli import cli

    root = tmp_path_factory.mktemp("fsdd_subset")

    def invoke(args):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, f"kaldilite {' '.join(args)}: {result.output}"

    invoke(["prepare-fsdd", "--split", "independent", "--train-takes", "3", "--test-takes", "1",
            str(fsdd_dir.parent), str(root / "data")])
    words = root / "digits.txt"
    words.write_text("zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n")
    invoke(["prepare-dict", "--lexicon", str(REPO / "lang" / "en" / "lexicon.txt"), str(words), str(root / "dict")])
    invoke(["prepare-lang", str(root / "dict"), "<UNK>", str(root / "lang_tmp"), str(root / "lang")])
    return root / "data" / "train", root / "lang"
