"""cnnstudio.train: the headless training engine (Trainer, callbacks, metrics, resume).

>>> result = Trainer(module, dataset, project.training_settings()).fit()
>>> result = train_project(project)  # data, model, training and write-back in one call
"""

from cnnstudio.project.origin import starting_point, weights_run
from cnnstudio.train.api import PredictError, predict, train_project
from cnnstudio.train.callbacks import BatchInfo, Callback, ProgressPrinter
from cnnstudio.train.device import DeviceError, default_cpu_threads, resolve_device
from cnnstudio.train.record import COMPLETED, FAILED, STOPPED, RunResult, run_record
from cnnstudio.train.resume import ResumeError, ResumeState
from cnnstudio.train.trainer import Trainer

__all__ = [
    "COMPLETED",
    "FAILED",
    "STOPPED",
    "BatchInfo",
    "Callback",
    "DeviceError",
    "PredictError",
    "ProgressPrinter",
    "ResumeError",
    "ResumeState",
    "RunResult",
    "Trainer",
    "default_cpu_threads",
    "predict",
    "resolve_device",
    "run_record",
    "starting_point",
    "train_project",
    "weights_run",
]
