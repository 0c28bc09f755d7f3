"""cnnstudio.train: the headless training engine (Trainer, callbacks, metrics, resume).

>>> result = Trainer(module, dataset, project.training_settings()).fit()
>>> result = train_project(project)  # data, model, training and write-back in one call

The names below load on first use: `cnnstudio.train.model_io`, which the window imports
at start, must not bring torch with its package.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "cnnstudio.project.origin": ("starting_point", "weights_run"),
    "cnnstudio.train.api": ("PredictError", "predict", "train_project"),
    "cnnstudio.train.callbacks": ("BatchInfo", "Callback", "ProgressPrinter"),
    "cnnstudio.train.device": ("DeviceError", "default_cpu_threads", "resolve_device"),
    "cnnstudio.train.record": ("COMPLETED", "FAILED", "STOPPED", "RunResult", "run_record"),
    "cnnstudio.train.resume": ("ResumeError", "ResumeState"),
    "cnnstudio.train.trainer": ("Trainer",),
}
__all__ = sorted(name for names in _HOMES.values() for name in names)


def __getattr__(name: str) -> Any:
    home = next((m for m, names in _HOMES.items() if name in names), None)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
