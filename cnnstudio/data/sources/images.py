"""Decoding image and mask files with Pillow, one file at a time or on a thread pool.

Every failure of a single file becomes a :class:`SkipFile` with a short reason; nothing a
file contains can stop a whole dataset. Truncated files are detected (``load()`` inside
``try``; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left off) and decompression bombs are
refused (Pillow's ``MAX_IMAGE_PIXELS``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import SkipFile
from .base import Progress, ProgressFn

# Formats whose files commonly carry an EXIF orientation (phone photos).
_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP", "HEIF"}
# Files per thread-pool task: big enough that task overhead is noise, small enough for progress.
_CHUNK = 64


def open_image(path: Path, draft: tuple[str, tuple[int, int]] | None = None,
               seen: list[tuple[int, int, str]] | None = None) -> Image.Image:
    """Open ``path`` and decode its first frame fully; return the Pillow image.

    ``draft`` (mode, (W, H)) lets JPEGs decode at a reduced scale no smaller than (W, H).
    ``seen``, when given, gets the file's own (height, width, mode) appended, as stored
    (before a draft scale). Raises SkipFile with the reason when the file cannot be used.
    """
    try:
        if os.path.getsize(path) == 0:
            raise SkipFile("empty file")
    except OSError as exc:
        raise SkipFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        with Image.open(path) as img:
            if seen is not None:
                seen.append((img.size[1], img.size[0], img.mode))
            if draft is not None and img.format == "JPEG":
                # libjpeg then decodes big photos at 1/2..1/8 scale (never below `size`).
                img.draft("L" if draft[0] == "L" else "RGB", draft[1])
            img.load()  # the first frame; leaving `with` closes only the file, not the data
            fmt = img.format
    except UnidentifiedImageError:
        raise SkipFile("not an image (cannot identify image file)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SkipFile(f"image too large (decompression bomb guard): {exc}") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on bad data
        raise SkipFile(f"corrupt or truncated image: {exc}") from None
    if fmt in _EXIF_FORMATS:
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block is no reason to lose the picture
            pass
    return img


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert to ``mode`` ('L', 'RGB', 'RGBA'), scaling 16/32-bit gray down to 0..255."""
    if img.mode == mode:
        return img
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, np.float64)
        if img.mode.startswith("I;16") or (arr.size and arr.max() > 255):
            arr = arr / 257.0  # 16-bit range 0..65535 onto 0..255
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # Pillow warns when a palette with transparency skips RGBA
    return img.convert(mode)


def decode_image(path: Path, mode: str, size: tuple[int, int],
                 seen: list[tuple[int, int, str]] | None = None) -> np.ndarray:
    """Decode one image file into a (C, H, W) uint8 array of ``mode`` and ``size`` (W, H);
    ``seen`` as for :func:`open_image`.

    Raises SkipFile with the reason when the file cannot be used.
    """
    return image_to_array(open_image(path, (mode, size), seen), mode, size)


def image_to_array(img: Image.Image, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Convert a loaded image to a (C, H, W) uint8 array of ``mode`` and ``size`` (W, H).

    Raises SkipFile if Pillow cannot convert it.
    """
    try:
        img = _to_mode(img, mode)
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(img)
    except Exception as exc:
        raise SkipFile(f"cannot convert image: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_mask(path: Path) -> np.ndarray:
    """Decode a class-index mask (mode L, P, 1 or 16-bit gray) into an (H, W) int64 array.

    Raises SkipFile when the file cannot be read or is a colour picture.
    """
    img = open_image(path)
    if img.mode in ("RGB", "RGBA", "LA"):
        arr = np.asarray(img)
        if not (arr[..., :1] == arr[..., : (1 if img.mode == "LA" else 3)]).all():
            raise SkipFile("mask is a colour image: expected class indices (mode L or P)")
        arr = arr[..., 0]
    elif img.mode in ("L", "P", "1") or img.mode.startswith("I"):
        arr = np.asarray(img)
    else:
        raise SkipFile(f"mask mode {img.mode} is not class indices (expected L or P)")
    return arr.astype(np.int64)


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    # Warning filters are process-wide; the calling thread waits for the pool meanwhile,
    # so the workers see the filter. Only this one category is touched.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def worker_count(seconds_per_file: float) -> int:
    """Threads worth using for files that take ``seconds_per_file`` to decode on one thread.

    Measured on 2 cores: small files (32x32 PNG ~0.1 ms, 64x64 JPEG ~0.2 ms) decode faster
    on one thread, as the per-file Python work holds the GIL; from ~0.4 ms per file (256x256
    JPEG: 0.5 ms, 1.5x faster on 2 threads) Pillow's GIL-free decoding pays for threads.
    """
    cores = os.cpu_count() or 1
    if cores < 2 or seconds_per_file < 4e-4:
        return 1
    return min(8, cores)


def decode_all(n: int, decode_one: Callable[[int], None], stage: str,
               progress: ProgressFn | None, workers: int | None = None) -> dict[int, str]:
    """Run ``decode_one(i)`` for i in range(n); return {i: skip reason} for skipped files.

    ``decode_one`` stores its result itself (e.g. into a preallocated row) and raises
    SkipFile to skip. The first chunk is timed on this thread; the rest goes to a thread
    pool when :func:`worker_count` says it pays (or ``workers`` threads when given).
    """
    report = Progress(progress, stage, n)
    skipped: dict[int, str] = {}

    def run_chunk(start: int) -> dict[int, str]:
        out: dict[int, str] = {}
        for i in range(start, min(start + _CHUNK, n)):
            try:
                decode_one(i)
            except SkipFile as exc:
                out[i] = str(exc)
        return out

    with _bombs_are_errors():
        began = time.perf_counter()
        skipped.update(run_chunk(0))
        first = min(_CHUNK, n)
        report.update(first)
        if workers is None:
            workers = worker_count((time.perf_counter() - began) / max(first, 1))
        starts = range(_CHUNK, n, _CHUNK)
        if workers <= 1:
            results: Iterator[dict[int, str]] = map(run_chunk, starts)
            for start, res in zip(starts, results, strict=True):
                skipped.update(res)
                report.update(min(start + _CHUNK, n))
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="cnnstudio-decode") as pool:
                for start, res in zip(starts, pool.map(run_chunk, starts), strict=True):
                    skipped.update(res)
                    report.update(min(start + _CHUNK, n))
    report.finish()
    return skipped
