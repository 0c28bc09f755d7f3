"""Image folders: one subfolder per class (optionally under train/ val/ test/), and
segmentation folders (images + same-stem class-index masks)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..convert import pil_mode, resize_masks
from ..errors import DataError, SkipFile, SkippedFile
from . import images
from .base import (
    GROUP_TEST,
    GROUP_TRAIN,
    GROUP_VAL,
    Allocator,
    Decoded,
    Progress,
    ProgressFn,
    SourcePlan,
    Target,
    compact,
)

# Top folders that define the splits; "train" must be present for the folder to count as split.
SPLIT_DIRS = {"train": GROUP_TRAIN, "val": GROUP_VAL, "valid": GROUP_VAL,
              "validation": GROUP_VAL, "test": GROUP_TEST}


@dataclass
class _File:
    rel: str  # relative to the plan root, with forward slashes
    size: int
    mtime_ns: int


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_files(root: Path, top: Path) -> Iterator[_File]:
    """Every non-hidden file under ``top``, sorted, with size and mtime."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for name in sorted(filenames):
            if _hidden(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished or a dangling link: nothing to decode
            yield _File(Path(os.path.relpath(path, root)).as_posix(), st.st_size, st.st_mtime_ns)


def _list_dir(path: Path, what: str) -> list[os.DirEntry[str]]:
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if not path.is_dir():
        raise DataError(f"{what} is not a folder: {path}")
    try:
        with os.scandir(path) as it:
            return sorted((e for e in it if not _hidden(e.name)), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def plan_folder(root: Path, target: Target, progress: ProgressFn | None) -> SourcePlan:
    """Scan a class-folder tree; return its plan. Raises DataError if unreadable."""
    mode = pil_mode(target, f"image folder {root}")
    target.require_image(f"image folder {root}")
    entries = _list_dir(root, "image folder")
    split_dirs = {e.name.lower(): e for e in entries if e.is_dir() and e.name.lower() in SPLIT_DIRS}
    top_skipped: list[SkippedFile] = []
    # (group, class name, folder) for every class folder to read
    class_dirs: list[tuple[int, str, Path]] = []
    if "train" in split_dirs:
        for e in entries:
            if e.name.lower() not in SPLIT_DIRS:
                top_skipped.append(SkippedFile(e.name, "not a train/val/test folder"))
                continue
            group = SPLIT_DIRS[e.name.lower()]
            for c in _list_dir(Path(e.path), "split folder"):
                if c.is_dir():
                    class_dirs.append((group, c.name, Path(c.path)))
                else:
                    top_skipped.append(SkippedFile(f"{e.name}/{c.name}",
                                                   "not inside a class folder"))
    else:
        for e in entries:
            if e.is_dir():
                class_dirs.append((GROUP_TRAIN, e.name, Path(e.path)))
            else:
                top_skipped.append(SkippedFile(e.name, "not inside a class folder"))
    if not class_dirs:
        raise DataError(f"no class folders in {root}: put each class's images in a subfolder")

    scan = Progress(progress, "scanning", len(class_dirs))
    files: list[tuple[_File, int, str]] = []  # (file, group, class name)
    for k, (group, name, path) in enumerate(class_dirs):
        files.extend((f, group, name) for f in _walk_files(root, path))
        scan.update(k + 1)
    scan.finish()

    class_names = sorted({name for _, name, _ in class_dirs})
    has_splits = "train" in split_dirs
    fingerprint: list[Any] = [
        "folder", [Path(os.path.relpath(p, root)).as_posix() for _, _, p in class_dirs],
        [[f.rel, f.size, f.mtime_ns] for f, _, _ in files],
    ]

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        n = len(files)
        out = alloc({"x": ((n, *target.shape), np.uint8)})
        x = out["x"]
        size = target.pil_size
        seen: list[tuple[int, int, str] | None] = [None] * n  # each file's own size, mode

        def one(i: int) -> None:
            found: list[tuple[int, int, str]] = []
            x[i] = images.decode_image(root / files[i][0].rel, mode, size, found)
            seen[i] = found[0]

        reasons = images.decode_all(n, one, "decoding", progress)
        keep, skipped = _kept_and_skipped(n, reasons, [f.rel for f, _, _ in files], top_skipped)
        index = {name: c for c, name in enumerate(class_names)}
        labels = np.array([index[c] for _, _, c in files], np.int64).reshape(-1)
        groups = np.array([g for _, g, _ in files], np.int8)
        # Classes with no usable image anywhere are dropped, and listed.
        present = np.bincount(labels[keep], minlength=len(class_names)) > 0
        for c, name in enumerate(class_names):
            if not present[c]:
                folders = [p for _, cname, p in class_dirs if cname == name]
                for p in folders:
                    rel = Path(os.path.relpath(p, root)).as_posix()
                    skipped.append(SkippedFile(rel, "empty class: no usable image"))
        remap = np.cumsum(present) - 1
        kept = compact({"x": x}, keep, alloc)
        return Decoded(
            x=kept["x"], y=remap[labels[keep]].astype(np.int64),
            class_names=[nm for nm, ok in zip(class_names, present, strict=True) if ok],
            group=groups[keep] if has_splits else None, skipped=skipped,
            formats=_count_formats(seen, keep),
            files=[f.rel for (f, _, _), kept in zip(files, keep, strict=True) if kept],
        )

    return SourcePlan(root=root, fingerprint=fingerprint, decode=decode)


def _read_class_names(masks: Path) -> tuple[list[str] | None, Path | None]:
    """``classes.txt`` inside the masks folder, else beside it; one name per line."""
    for path in (masks / "classes.txt", masks.parent / "classes.txt"):
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {path}: {exc}") from None
            names = [line.strip() for line in text.splitlines() if line.strip()]
            if not names:
                raise DataError(f"{path} names no class")
            return names, path
    return None, None


def plan_segmentation_folder(images_dir: Path, masks_dir: Path, target: Target,
                             progress: ProgressFn | None) -> SourcePlan:
    """Pair images with same-stem masks; return the plan. Raises DataError if unreadable."""
    what = f"segmentation images {images_dir}"
    mode = pil_mode(target, what)
    target.require_image(what)
    _list_dir(images_dir, "images folder")
    _list_dir(masks_dir, "masks folder")
    root = Path(os.path.commonpath([images_dir, masks_dir]))
    scan = Progress(progress, "scanning", 2)
    image_files = list(_walk_files(root, images_dir))
    scan.update(1)
    mask_files = [f for f in _walk_files(root, masks_dir) if Path(f.rel).name != "classes.txt"]
    scan.finish()
    class_names, classes_path = _read_class_names(masks_dir)

    def stem(f: _File, base: Path) -> str:
        rel = Path(os.path.relpath(root / f.rel, base))
        return rel.with_suffix("").as_posix()

    masks_by_stem: dict[str, _File] = {}
    skipped: list[SkippedFile] = []
    for f in mask_files:
        if stem(f, masks_dir) in masks_by_stem:
            skipped.append(SkippedFile(f.rel, "another mask has the same name"))
        else:
            masks_by_stem[stem(f, masks_dir)] = f
    pairs: list[tuple[_File, _File]] = []
    for f in image_files:
        m = masks_by_stem.pop(stem(f, images_dir), None)
        if m is None:
            skipped.append(SkippedFile(f.rel, "no mask with the same name"))
        else:
            pairs.append((f, m))
    skipped += [SkippedFile(m.rel, "no image with the same name") for m in masks_by_stem.values()]

    fingerprint: list[Any] = [
        "segmentation_folder",
        [[f.rel, f.size, f.mtime_ns] for pair in pairs for f in pair],
        [s.rel for s in (*image_files, *mask_files)],
        None if classes_path is None else [classes_path.read_bytes().decode("utf-8", "replace")],
    ]

    def decode(alloc: Allocator, progress: ProgressFn | None) -> Decoded:
        n = len(pairs)
        out = alloc({"x": ((n, *target.shape), np.uint8), "y": ((n, *target.spatial), np.int64)})
        x, y = out["x"], out["y"]
        size = target.pil_size
        seen: list[tuple[int, int, str] | None] = [None] * n

        def one(i: int) -> None:
            img_file, mask_file = pairs[i]
            mask = images.decode_mask(root / mask_file.rel)
            sample = images.open_image(root / img_file.rel)
            seen[i] = (sample.size[1], sample.size[0], sample.mode)
            if sample.size != (mask.shape[1], mask.shape[0]):
                raise SkipFile(f"mask size {mask.shape[1]}x{mask.shape[0]} differs from the "
                               f"image's {sample.size[0]}x{sample.size[1]}")
            if class_names is not None and mask.size and mask.max() >= len(class_names):
                raise SkipFile(f"mask has class {int(mask.max())} but classes.txt names "
                               f"{len(class_names)} classes")
            x[i] = images.image_to_array(sample, mode, size)
            y[i] = resize_masks(mask[None], target.spatial)[0]

        reasons = images.decode_all(n, one, "decoding", progress)
        keep, all_skipped = _kept_and_skipped(n, reasons, [im.rel for im, _ in pairs], skipped)
        kept = compact({"x": x, "y": y}, keep, alloc)
        names = class_names
        if names is None:
            top = int(kept["y"].max()) if kept["y"].size else 0
            names = [f"class_{i}" for i in range(top + 1)]
        return Decoded(x=kept["x"], y=kept["y"], class_names=names, skipped=all_skipped,
                       formats=_count_formats(seen, keep),
                       files=[im.rel for (im, _), ok in zip(pairs, keep, strict=True) if ok])

    return SourcePlan(root=root, fingerprint=fingerprint, decode=decode)


def _kept_and_skipped(n: int, reasons: dict[int, str], names: list[str],
                      skipped_before: list[SkippedFile]) -> tuple[np.ndarray, list[SkippedFile]]:
    """Which of `n` decoded files are kept, and the skipped list with the failed ones (by
    reason, in file order) after those skipped before decoding."""
    keep = np.ones(n, bool)
    skipped = list(skipped_before)
    for i, reason in sorted(reasons.items()):
        keep[i] = False
        skipped.append(SkippedFile(names[i], reason))
    return keep, skipped


def _count_formats(seen: list[tuple[int, int, str] | None],
                   keep: np.ndarray) -> dict[tuple[int, int, str], int]:
    """{(height, width, mode): files} over the files kept."""
    counts: dict[tuple[int, int, str], int] = {}
    for found, kept in zip(seen, keep, strict=True):
        if kept and found is not None:
            counts[found] = counts.get(found, 0) + 1
    return counts
