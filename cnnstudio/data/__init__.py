"""cnnstudio.data: local datasets to cached tensors, splits, normalisation, augmentation.

>>> ds = load_dataset({"kind": "builtin", "name": "digits"}, input_shape=[1, 8, 8])
>>> xb = ds.batch_to_float(ds.x[ds.splits["train"][:64]])
"""

from .augment import augment_batch
from .cache import CACHE_VERSION, clear_cache, default_cache_dir, default_memory_budget
from .dataset import Dataset, channel_stats
from .errors import DataError, SkippedFile
from .loader import load_dataset

__all__ = [
    "CACHE_VERSION",
    "DataError",
    "Dataset",
    "SkippedFile",
    "augment_batch",
    "channel_stats",
    "clear_cache",
    "default_cache_dir",
    "default_memory_budget",
    "load_dataset",
]
