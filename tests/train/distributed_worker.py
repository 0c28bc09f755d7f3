"""One rank of the distributed Trainer tests: `python distributed_worker.py OUT_DIR`.

Started by `run_local` (torch's elastic launcher) from `test_distributed.py`. Joins the
group from the torchrun variables, trains the scenarios below with `Trainer(dist=...)` and
writes, per scenario and rank, the final weights (`S-rank<R>.safetensors`) and what the
run reported (`S-rank<R>.json`). The test compares them across ranks and with a
single-process run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from cnnstudio.train import Callback, Trainer  # noqa: E402
from cnnstudio.train.distributed import DistContext, close, init_from_env  # noqa: E402
from cnnstudio.train.freezing import freeze_nodes  # noqa: E402
from tests.train.helpers import build, make_dataset, settings, small_graph  # noqa: E402

# Shared with the test: 64 training and 12 validation samples, 8 per process and batch.
N, VAL, BATCH, EPOCHS = 76, 12, 8, 3


class NanOnRank(Callback):
    """Makes `rank`'s loss NaN from its `call`-th training batch on."""

    def __init__(self, rank: int, call: int) -> None:
        self.rank, self.call = rank, call

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.strategy.rank != self.rank:
            return
        real, calls = trainer.loss, [0]

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            value = real(out, target)
            return value * float("nan") if calls[0] >= self.call else value

        trainer.loss = loss


class StopOnRank(Callback):
    """Only `rank` asks to stop, after batch (epoch, batch), both from 1."""

    def __init__(self, rank: int, at: tuple[int, int]) -> None:
        self.rank, self.at = rank, at

    def on_batch_end(self, trainer: Any, info: Any) -> None:
        if trainer.strategy.rank == self.rank and (info.epoch, info.batch) == self.at:
            trainer.request_stop()


def run(ctx: DistContext, n: int = N, callbacks: tuple[Callback, ...] = (),
        resume: Any = None, batch_norm: bool = False, frozen: tuple[str, ...] = (),
        **overrides: Any) -> tuple[Trainer, Any]:
    dataset = make_dataset(n, val=VAL)
    graph = small_graph(3, batch_norm=batch_norm)
    graph.set_trainable(frozen, False)
    module = build(graph)
    freeze_nodes(module, graph)
    trainer = Trainer(module, dataset,
                      settings(batch_size=BATCH, epochs=EPOCHS, checkpoint="last", **overrides),
                      callbacks=callbacks, resume=resume, dist=ctx)
    return trainer, trainer.fit()


def save(out: Path, name: str, ctx: DistContext, trainer: Trainer, result: Any) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in trainer.module.state_dict().items()}
    save_file(state, str(out / f"{name}-rank{ctx.rank}.safetensors"))
    report = {"status": result.status, "message": result.message, "epochs": result.epochs,
              "confusion_matrix": trainer.confusion_matrix.tolist()
              if trainer.confusion_matrix is not None else None,
              "batches_per_epoch": trainer.batches_per_epoch,
              "position": list(trainer._position)}
    (out / f"{name}-rank{ctx.rank}.json").write_text(json.dumps(report))


def main(out: Path) -> None:
    ctx = init_from_env("cpu")
    trainer, result = run(ctx)
    save(out, "equal", ctx, trainer, result)
    # 61 training samples: shards of 31 (one padded), 4 batches on each rank, no hang.
    trainer, result = run(ctx, n=73)
    save(out, "uneven", ctx, trainer, result)
    # BatchNorm: each rank normalizes its own batch; DDP gives all rank 0's running stats.
    trainer, result = run(ctx, batch_norm=True)
    save(out, "batchnorm", ctx, trainer, result)
    # A frozen backbone: DDP reduces only the head's gradients; frozen BN keeps its stats.
    trainer, result = run(ctx, batch_norm=True, frozen=("conv1", "bn1"))
    save(out, "frozen", ctx, trainer, result)
    trainer, result = run(ctx, callbacks=(NanOnRank(1, 3),))
    save(out, "nan", ctx, trainer, result)
    trainer, result = run(ctx, callbacks=(StopOnRank(1, (2, 2)),))
    save(out, "stop", ctx, trainer, result)
    trainer, result = run(ctx, resume=result.resume_state)
    save(out, "resumed", ctx, trainer, result)
    ctx.barrier()
    close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
