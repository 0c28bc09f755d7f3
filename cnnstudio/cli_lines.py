"""What `cnnstudio train` prints while it runs, and how it hears Ctrl-C: the line saying
where the weights start, data progress, the Ctrl-C handler, and a test hook that sends a
real SIGINT at a chosen point of a run. The `--json` lines are the engine's
(`cnnstudio.train.events`): the window reads them too.

Imported only when training runs (it imports torch through cnnstudio.train).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, TextIO

from cnnstudio.project.origin import describe_init
from cnnstudio.train import Callback, ProgressPrinter


class InterruptToStop(Callback):
    """Ctrl-C asks the trainer to stop after the current batch (weights and resume state
    are then saved); a second Ctrl-C aborts at once. `announce=False` keeps quiet (the
    ranks of a distributed run other than rank 0). Leaving ends `printer`'s bar line, so
    that no message (an abort's) lands on it."""

    def __init__(self, announce: bool = True, printer: ProgressPrinter | None = None) -> None:
        self.trainer = None
        self.interrupted = False
        self.announce = announce
        self.printer = printer  # its bar line is ended before the message
        self._previous = None
        self.finished = False  # set once the stopped run is saved: nothing left to abort

    def __enter__(self) -> InterruptToStop:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.printer is not None:
            self.printer.end_line()
        # After a stop the user asked for, a late second press has nothing left to abort.
        signal.signal(signal.SIGINT, signal.SIG_IGN if self.interrupted and self.finished
                      else self._previous or signal.default_int_handler)

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.finished:
            return
        if self.trainer is None or self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.trainer.request_stop()
        if self.announce:
            if self.printer is not None:
                self.printer.end_line()
            print("stopping after this batch (Ctrl-C again to abort)", file=sys.stderr,
                  flush=True)

    def on_fit_start(self, trainer) -> None:
        self.trainer = trainer


class SigintAt(Callback):
    """A test hook: sends this process a real SIGINT at a chosen point of the run, so
    tests can stop `cnnstudio train` exactly where they mean to (a real signal, handled
    by `InterruptToStop` as a user's Ctrl-C is). Set through SIGINT_AT_VAR as `E:B`
    (after batch B of epoch E, both from 1), `E:end` (after epoch E's validation: the
    stop then lands on the epoch boundary) or `E:val` (after the first validation batch
    of epoch E)."""

    def __init__(self, spec: str) -> None:
        epoch, _, where = spec.partition(":")
        self.epoch, self.where = int(epoch), where
        self.sent = False

    def _send(self) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def on_batch_end(self, trainer, info) -> None:
        if info.epoch != self.epoch:
            return
        if self.where.isdigit() and info.batch == int(self.where):
            self._send()
        elif self.where == "val" and info.batch == info.batches:
            # Validation asks `_halt` before each batch: signal on its second question.
            halt, calls = trainer._halt, []

            def counting_halt() -> bool:
                calls.append(1)
                if len(calls) == 2:
                    self._send()
                return halt()

            trainer._halt = counting_halt

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        if self.where == "end" and record["epoch"] == self.epoch:
            self._send()


SIGINT_AT_VAR = "CNNSTUDIO_TEST_SIGINT_AT"


def test_hooks() -> list[Callback]:
    spec = os.environ.get(SIGINT_AT_VAR)
    return [SigintAt(spec)] if spec else []


class StartLine(Callback):
    """The text mode's first line: where this run's weights start (new, seeded; or a
    warm start from run N's), or which stopped run it resumes."""

    def __init__(self, project: Any, stream: TextIO) -> None:
        self.stream = stream
        last = project.runs[-1] if project.runs else None
        self.last_id = last.get("id") if isinstance(last, dict) else None

    def on_fit_start(self, trainer) -> None:
        init, seed = trainer.init, trainer.seed
        if trainer.resumed_at is not None:
            epoch, batch = trainer.resumed_at
            where = (f"epoch {epoch + 1}, batch {batch + 1}" if batch < trainer.batches_per_epoch
                     else f"the validation of epoch {epoch + 1}")
            line = (f"resuming {self.last_id} where it stopped ({where}); it started from"
                    f" {describe_init(init)}")
        elif init == "fresh":
            line = f"starting from new weights (seed {seed})"
        else:
            line = (f"continuing from {describe_init(init)} (--fresh starts from new"
                    " weights instead)")
        print(line, file=self.stream, flush=True)


class DataProgress:
    """Progress of each stage on one rewritten line of a terminal: by default the
    dataset's scanning/decoding ("scanning data: 3/10 (30%)"); `suffix` follows the stage
    name ("" for stages that name themselves)."""

    def __init__(self, stream, suffix: str = " data") -> None:
        self.stream = stream
        self.suffix = suffix
        self._open = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        self.stream.write(f"\r{stage}{self.suffix}: {done}/{total} ({percent}%)   ")
        self._open = done < total
        if not self._open:
            self.stream.write("\n")
        self.stream.flush()

    def end_line(self) -> None:
        """End an unfinished line, so that a message after it starts on its own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
