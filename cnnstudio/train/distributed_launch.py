"""Starting a distributed run on this machine, with torch's elastic launcher (torchrun's).

`run_local()` is what `cnnstudio train PROJECT --nproc N` does in the process the user
started: it launches N worker processes through `torch.distributed.launcher.api.
elastic_launch` (rendezvous on 127.0.0.1, a free port, no restarts), each running
`python -m cnnstudio train PROJECT …` as one rank, and turns how they ended into one
outcome. `launch()` starts that same command as a child process for the GUI and returns a
`DistributedJob` to read its JSON lines from and to stop it.

Stopping. Ctrl-C (SIGINT) in the launching process writes the `stop` file the ranks watch;
they agree to stop after the current batch and rank 0 saves a "stopped" run with its
weights. A second Ctrl-C, or SIGTERM, ends them at once (the elastic agent sends SIGTERM
to every worker): the project file is then left as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cnnstudio.train.distributed_run import OUTCOME_DIR_VAR, STOP_FILE
from cnnstudio.train.events import BATCH_EVENTS_VAR, SNAPSHOTS_VAR
from cnnstudio.train.record import FAILED
from cnnstudio.train.snapshots import read_arrays, write_watch


@dataclass
class LaunchOutcome:
    """How a local distributed run ended: `main` is rank 0's outcome (a `RankOutcome`
    dict) when the ranks ended together; otherwise `status` is "failed" and `message`
    names the root cause, e.g. "… (in process 1 of 2)". `aborted`: ended by a signal."""

    status: str
    message: str
    main: dict[str, Any] | None = None
    aborted: bool = False


def worker_args(project: str | Path, *, epochs: int | None = None, device: str | None = None,
                out: str | Path | None = None, json_lines: bool = False,
                fresh: bool = False) -> list[str]:
    """The arguments after `python` that make a process one rank of the run."""
    args = ["-m", "cnnstudio", "train", str(project), *(["--fresh"] if fresh else [])]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if device is not None:
        args += ["--device", str(device)]
    if out is not None:
        args += ["--out", str(out)]
    return args + (["--json"] if json_lines else [])


def run_local(args: Sequence[str], nproc: int, *, stderr: TextIO | None = None) -> LaunchOutcome:
    """Run `python ARGS` as `nproc` ranks on this machine and wait for them; return how
    they ended. Must run in the main thread (it handles SIGINT, SIGTERM). The workers'
    stdout and stderr are this process's (rank 0 alone prints)."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    stderr = stderr if stderr is not None else sys.stderr
    given = os.environ.get(OUTCOME_DIR_VAR)  # launch() makes the folder and keeps it
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="cnnstudio-dist-"))
    folder.mkdir(parents=True, exist_ok=True)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"cnnstudio-{uuid.uuid4()}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1",
        max_restarts=0, monitor_interval=0.1,
        # SIGINT is ours (a graceful stop); the agent keeps the others (end everything).
        signals_to_handle="SIGTERM,SIGHUP,SIGQUIT" if os.name != "nt" else "SIGTERM",
        logs_specs=DefaultLogsSpecs(log_dir=str(folder / "logs")))
    env = {OUTCOME_DIR_VAR: str(folder), **_loopback_env()}
    failure: ChildFailedError | None = None
    aborted = False
    try:
        with _environment(env), _quiet_agent(), _interrupts(folder, stderr):
            elastic_launch(config, sys.executable)(*args)
    except ChildFailedError as err:
        failure = err
    except SignalException:
        aborted = True
    finally:
        outcomes = _read_outcomes(folder)
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
    return _judge(outcomes, failure, aborted, nproc)


def _judge(outcomes: list[dict[str, Any]], failure: Any, aborted: bool,
           nproc: int) -> LaunchOutcome:
    """One outcome for the run: rank 0's when the ranks ended together, else the root
    cause (the earliest failure written: a rank that failed alone writes before it exits,
    so its peers' "connection closed" errors always come later)."""
    main = next((o for o in outcomes if o.get("rank") == 0 and o.get("together")), None)
    if main is not None:
        return LaunchOutcome(main["status"], main.get("message", ""), main, aborted)
    failed = sorted((o for o in outcomes if o.get("status") == FAILED),
                    key=lambda o: o.get("time", 0.0))
    if failed:
        first = failed[0]
        where = f" (in process {first['rank']} of {first.get('world_size', nproc)})"
        return LaunchOutcome(FAILED, (first.get("message") or "training failed") + where,
                             aborted=aborted)
    if failure is not None:
        rank, info = failure.get_first_failure()
        how = (f"was killed by {info.signal_name()}" if info.exitcode < 0
               else f"exited with status {info.exitcode}")
        return LaunchOutcome(FAILED, f"process {rank} of {nproc} {how} before reporting"
                             " (out of memory?)", aborted=aborted)
    if aborted:
        return LaunchOutcome(FAILED, "aborted: every process was ended at once; the project"
                             " file is as it was", aborted=True)
    return LaunchOutcome(FAILED, "the processes ended without a result")


def _read_outcomes(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("rank*.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def _loopback_env() -> dict[str, str]:
    """Gloo binds to the address the host name resolves to, which on some machines is an
    interface the peers cannot reach; all ranks are here, so use the loopback."""
    if os.environ.get("GLOO_SOCKET_IFNAME"):
        return {}
    with contextlib.suppress(OSError, AttributeError):
        names = [name for _, name in socket.if_nameindex()]
        for name in ("lo", "lo0"):
            if name in names:
                return {"GLOO_SOCKET_IFNAME": name}
    return {}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the workers (the agent copies os.environ), then put them back."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent logs every worker it starts and signals; the user gets our one line.
    (CNNSTUDIO_DEBUG=1 shows them.)"""
    if os.environ.get("CNNSTUDIO_DEBUG"):
        yield
        return
    # torch gives "torch.distributed" its own stderr handler (and no propagation): swap it.
    root = logging.getLogger("torch.distributed")
    handlers, propagate = root.handlers[:], root.propagate
    root.handlers, root.propagate = [logging.NullHandler()], False
    try:
        yield
    finally:
        root.handlers, root.propagate = handlers, propagate


@contextlib.contextmanager
def _interrupts(folder: Path, stderr: TextIO) -> Iterator[None]:
    """First SIGINT: write the stop file (the ranks stop together after the current
    batch). Second: end everything now, through the agent's own SIGTERM path."""
    from torch.distributed.elastic.multiprocessing import SignalException

    count = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        if count > 1:
            raise SignalException("interrupted twice", sigval=signal.SIGTERM)
        (folder / STOP_FILE).touch()
        print("\nstopping all processes after this batch (Ctrl-C again to abort)",
              file=stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- for the GUI: the job as a child process group ------------------------------------


class DistributedJob:
    """A `cnnstudio train PROJECT --nproc N --json` child process and its workers.

    Read `events()` (one dict per JSON line: `{"event": "batch" | "epoch" | "snapshot" |
    "end", …}`) from a worker thread; call `stop()` or `abort()` from any thread; `wait()`
    for the exit status (0 completed, 1 stopped or failed, 2 bad input). The end line says
    how the job ended, also when it refused to start; `error` is the last line it wrote on
    stderr (all there is when it was killed or crashed). With
    snapshots, `watch()` says what they show and `snapshot_arrays()` reads one.
    """

    def __init__(self, process: subprocess.Popen[str], folder: Path) -> None:
        self.process = process
        self.folder = folder
        self._stderr: deque[str] = deque(maxlen=50)
        # Drained on a thread: a full stderr pipe would block the job.
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self._stderr.append(line.rstrip("\n"))

    def events(self) -> Iterator[dict[str, Any]]:
        """The JSON lines of the job as they come (blocks); ends when the job closes its
        output. Lines that are not JSON objects are skipped."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event

    def watch(self, *, filter_node: str | None, activation_node: str | None,
              sample_index: int) -> None:
        """What rank 0's snapshots show from its next epoch's end on: the filters of
        `filter_node`, the feature maps of `activation_node` for view sample
        `sample_index`. Raises OSError when the job folder cannot be written."""
        write_watch(self.folder, filter_node=filter_node, activation_node=activation_node,
                    sample_index=sample_index)

    def snapshot_arrays(self, event: dict[str, Any]) -> dict[str, Any]:
        """The arrays (`filters`, `activation`) of a `{"event": "snapshot"}` line, read
        from its file, which is then deleted; {} when it has none. Raises OSError or
        ValueError for a file that cannot be read."""
        path = event.get("path")
        return read_arrays(self.folder, str(path)) if path else {}

    def stop(self) -> None:
        """Stop gracefully: all ranks stop after the current batch; rank 0 saves a
        "stopped" run with the last weights (training again resumes it)."""
        with contextlib.suppress(OSError):
            (self.folder / STOP_FILE).touch()

    def abort(self) -> None:
        """End every process now (SIGTERM to the launcher, which ends the workers); the
        project file is left as it was."""
        if self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; raises subprocess.TimeoutExpired after `timeout` seconds."""
        code = self.process.wait(timeout)
        self._drain.join(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)
        return code

    @property
    def error(self) -> str:
        return self._stderr[-1] if self._stderr else ""


def launch(project: str | Path, nproc: int, *, epochs: int | None = None,
           device: str | None = None, out: str | Path | None = None,
           batch_events: float | None = 0.1, snapshots: bool = False,
           python: str | None = None, env: dict[str, str] | None = None,
           fresh: bool = False) -> DistributedJob:
    """Start `python -m cnnstudio train PROJECT --nproc N --json` as a child process
    group and return the job. `batch_events` (seconds) adds a throttled
    `{"event": "batch", "epoch", "batch", "batches", "loss", "lr", "samples_seen",
    "images_per_second"}` line for live plots; None leaves them out. `snapshots` adds
    each epoch's `confusion_matrix` to its line and, once `job.watch()` said what to
    show, a `{"event": "snapshot", "epoch", "path", "sample", "filter_node",
    "activation_node"}` line after it (and one at the end when the weights moved since),
    its arrays in the file `path` (see `snapshot_arrays`). `env` adds variables. `fresh`
    starts from new weights (`train --fresh`). Raises
    OSError if the process cannot be started."""
    folder = Path(tempfile.mkdtemp(prefix="cnnstudio-dist-"))
    child_env = {**os.environ, **(env or {}), OUTCOME_DIR_VAR: str(folder)}
    child_env.pop(SNAPSHOTS_VAR, None)  # only this call decides
    if batch_events is not None:
        child_env[BATCH_EVENTS_VAR] = str(batch_events)
    if snapshots:
        child_env[SNAPSHOTS_VAR] = "1"
    command = [python or sys.executable, *worker_args(project, epochs=epochs, device=device,
                                                      out=out, json_lines=True, fresh=fresh),
               "--nproc", str(nproc)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, bufsize=1, env=child_env,
                               # Its own session: a Ctrl-C meant for the GUI's terminal
                               # does not reach it; the GUI decides with stop()/abort().
                               start_new_session=os.name != "nt")
    return DistributedJob(process, folder)
