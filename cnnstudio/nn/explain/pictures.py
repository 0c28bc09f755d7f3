"""Pictures of what a layer's filters respond to, written as PNG files.

This module's own code uses NumPy and Pillow only (no Qt; it calls no torch), but importing
it imports its packages, `cnnstudio.nn` and `cnnstudio.nn.explain`, and so torch: import it
where torch may load. `cnnstudio explain -o DIR` writes the pictures. A sample is drawn as the Input holds it (uint8 as is, floats
min–max scaled), scaled up nearest-neighbour so that a small picture (an 8×8 digit) is at
least 96 pixels across and every pixel stays a visible square.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .colours import CMAPS, colorize, colour_table, value_range

__all__ = ["CMAPS", "colorize", "colour_bar", "colour_table", "draw_box", "sample_image",
           "value_range", "write_report_pngs"]


MIN_HIT_PX = 96  # a top-k hit is drawn at least this many pixels across
MAX_TILES = 64  # hits drawn per filter picture (the best): a huge --top stays a picture
MIN_MAP_PX = 192  # occlusion and Grad-CAM pictures: larger, they are read closely
SIGNAL_HEIGHT = 64  # a 1-D signal's plot, in pixels (before scaling)
BOX_COLOUR = (255, 64, 64)
_BACKGROUND = (250, 250, 250)
_INK = (20, 20, 20)
_MUTED = (100, 100, 100)
_MARGIN = 8
_LINE_COLOURS = ((240, 240, 240), (255, 170, 60), (90, 200, 255), (140, 230, 120))


def _to_unit(x: np.ndarray, mean: Sequence[float] | None,
             std: Sequence[float] | None) -> np.ndarray:
    """Sample values as 0..1 floats for display, channels first."""
    if mean is not None and std is not None:  # a normalised model input: undo it
        shape = (-1,) + (1,) * (x.ndim - 1)
        channels = x.shape[0]
        m = np.resize(np.asarray(mean, np.float64), channels).reshape(shape)
        s = np.resize(np.asarray(std, np.float64), channels).reshape(shape)
        return np.clip(x.astype(np.float64) * s + m, 0.0, 1.0)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    v = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(v.min()), float(v.max())
    if high - low <= 1e-12 * max(1.0, abs(low), abs(high)):
        return np.full(v.shape, 0.5)
    return (v - low) / (high - low)


def sample_image(x: np.ndarray, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> np.ndarray:
    """A sample as an RGB picture (H, W, 3) uint8.

    `x` is one sample, channels first: an image (C, H, W) or a signal (C, L), uint8 as the
    dataset holds it or float (min–max scaled over the sample). With `mean` and `std`, `x`
    is a normalised model input and is un-normalised to 0..1 first. 1 channel is gray, 3
    are RGB, 4 RGB with the alpha left out, any other count shows its first channel. A
    signal becomes a plot SIGNAL_HEIGHT pixels high and L wide, one line per channel (at
    most four); a volume (C, D, H, W) shows its middle slice. Raises ValueError for an
    empty sample or another number of dimensions.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 4:
        x = x[:, x.shape[1] // 2]
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"a sample is (C, H, W) or (C, L); got shape {list(x.shape)}")
    unit = _to_unit(x, mean, std)
    if x.ndim == 2:
        return _signal_plot(unit)
    channels = unit.shape[0]
    rgb = unit[:3] if channels in (3, 4) else np.repeat(unit[:1], 3, axis=0)
    return np.rint(np.moveaxis(rgb, 0, -1) * 255).astype(np.uint8)


def _signal_plot(unit: np.ndarray) -> np.ndarray:
    """(C, L) values in 0..1 as lines on a dark plot SIGNAL_HEIGHT high and L wide."""
    length = unit.shape[1]
    picture = Image.new("RGB", (max(length, 2), SIGNAL_HEIGHT), (30, 30, 36))
    draw = ImageDraw.Draw(picture)
    for channel, values in enumerate(unit[:len(_LINE_COLOURS)]):
        ys = (1.0 - values) * (SIGNAL_HEIGHT - 1)
        points = [(float(i), float(y)) for i, y in enumerate(ys)]
        if len(points) == 1:
            points.append((1.0, points[0][1]))
        draw.line(points, fill=_LINE_COLOURS[channel], width=1)
    return np.asarray(picture)[:, :length] if length >= 2 else np.asarray(picture)[:, :1]


def draw_box(img: np.ndarray, box: Sequence[int] | None, colour: tuple[int, int, int] = BOX_COLOUR,
             width: int = 1, halo: bool = False) -> np.ndarray:
    """A copy of picture `img` (H, W, 3) with the outline of `box` [y0, x0, y1, x1]
    (pixels, end-exclusive, clipped to the picture) drawn `width` pixels thick inside it,
    with `halo` a white line just outside it too. None or an empty box draws nothing."""
    out = np.array(img, np.uint8, copy=True)
    if box is None:
        return out
    height, width_px = out.shape[:2]
    y0, x0, y1, x1 = (int(v) for v in box)
    y0, y1 = max(0, y0), min(height, y1)
    x0, x1 = max(0, x0), min(width_px, x1)
    if y1 <= y0 or x1 <= x0:
        return out
    picture = Image.fromarray(out)
    draw = ImageDraw.Draw(picture)
    if halo:  # a light line around it: visible on dark, light and busy pictures alike
        draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=(255, 255, 255), width=1)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=tuple(colour), width=max(1, int(width)))
    return np.asarray(picture).copy()


def scale_up(img: np.ndarray, factor: int) -> np.ndarray:
    """Picture `img` (H, W, …) `factor` times larger, each pixel a square (nearest)."""
    factor = max(1, int(factor))
    return img if factor == 1 else np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def scale_for(height: int, width: int, minimum: int = MIN_HIT_PX) -> int:
    """The whole factor that makes a picture of (height, width) at least `minimum`
    pixels across (its longer side), 1 when it already is."""
    return max(1, math.ceil(minimum / max(1, height, width)))


@lru_cache(maxsize=8)
def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` pixels (its bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # an old Pillow, or one without FreeType
        return ImageFont.load_default()


def number(value: float) -> str:
    """A value for a label: 4 significant digits, no needless exponent."""
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def text_size(text: str, size: int = 13) -> tuple[int, int]:
    """(width, height) in pixels of `text` in `font(size)`."""
    left, top, right, bottom = font(size).getbbox(text or " ")
    return int(math.ceil(right - min(0, left))), int(math.ceil(bottom - min(0, top)))


def fit_text(text: str, width: int, size: int = 13) -> str:
    """`text`, shortened with "…" in the middle until it fits `width` pixels."""
    if text_size(text, size)[0] <= width:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head, tail = (keep + 1) // 2, keep // 2
        short = text[:head] + "…" + (text[-tail:] if tail else "")
        if text_size(short, size)[0] <= width:
            return short
    return "…"


def colour_bar(lo: float, hi: float, height: int, cmap: str = "magma",
               strip: int = 16) -> np.ndarray:
    """A vertical colour bar `height` pixels high: `cmap` from `hi` (top) to `lo`
    (bottom), labelled with both numbers and the middle one: (height, W, 3) uint8."""
    labels = [number(hi), number((lo + hi) / 2), number(lo)]
    label_width = max(text_size(t)[0] for t in labels)
    text_height = text_size("0")[1]
    height = max(int(height), 3 * text_height + 4)
    picture = Image.new("RGB", (strip + 6 + label_width + 2, height), _BACKGROUND)
    ramp = colorize(np.linspace(1.0, 0.0, height)[:, None].repeat(strip, axis=1), cmap, 0, 1)
    picture.paste(Image.fromarray(ramp), (0, 0))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, strip - 1, height - 1), outline=_MUTED)
    for text, y in zip(labels, (0, (height - text_height) // 2, height - text_height),
                       strict=True):
        draw.text((strip + 6, y), text, fill=_INK, font=font())
    return np.asarray(picture)


def picture_box(box: Sequence[int] | None, sample_shape: Sequence[int],
                picture_shape: Sequence[int], scale: int) -> tuple[int, int, int, int] | None:
    """A box in sample coordinates ([y0, x0, y1, x1]; a signal's [0, x0, 1, x1]) on the
    sample's picture drawn `scale` times larger: a signal's box spans the plot's height."""
    if box is None:
        return None
    y0, x0, y1, x1 = (int(v) for v in box)
    if len(sample_shape) == 2:  # (C, L): the plot is SIGNAL_HEIGHT high
        return 0, x0 * scale, picture_shape[0], x1 * scale
    return y0 * scale, x0 * scale, y1 * scale, x1 * scale


def paste(canvas: Image.Image, img: np.ndarray, x: int, y: int) -> None:
    """Put picture `img` (H, W, 3) uint8 on `canvas` with its top left at (x, y)."""
    canvas.paste(Image.fromarray(np.ascontiguousarray(img, np.uint8)), (int(x), int(y)))




# ---- the report's pictures -------------------------------------------------------------


def _label_lines(canvas: Image.Image, lines: Sequence[tuple[str, tuple[int, int, int]]],
                 x: int, y: int, width: int) -> None:
    draw = ImageDraw.Draw(canvas)
    for text, colour in lines:
        draw.text((x, y), fit_text(text, width), fill=colour, font=font())
        y += text_size("Ag")[1] + 3


def hit_tile(sample: np.ndarray, box: Sequence[int] | None, labels: Sequence[str]) -> np.ndarray:
    """One top-k hit as a picture: the whole `sample` scaled up with `box` (sample
    coordinates) drawn on it, beside it the box's crop at the same height when the box is
    smaller than the sample, and `labels` (one line each) below."""
    sample = np.asarray(sample)
    picture = sample_image(sample)
    scale = scale_for(*picture.shape[:2])
    big = scale_up(picture, scale)
    on_picture = picture_box(box, sample.shape if sample.ndim > 1 else (1, *sample.shape),
                             big.shape, scale)
    panels = [draw_box(big, on_picture, width=2, halo=True)]
    if box is not None and int(box[2]) > int(box[0]) and int(box[3]) > int(box[1]):
        y0, x0, y1, x1 = (int(v) for v in box)
        crop = picture[y0:y1, x0:x1] if sample.ndim == 3 else picture[:, x0:x1]
        if crop.size and crop.shape[:2] != picture.shape[:2]:
            crop = scale_up(crop, max(1, big.shape[0] // max(crop.shape[0], 1)))
            # framed in the box's colour: the crop is that box
            framed = np.empty((crop.shape[0] + 4, crop.shape[1] + 4, 3), np.uint8)
            framed[:] = BOX_COLOUR
            framed[2:-2, 2:-2] = crop
            panels.append(framed)
    gap = 4
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    width = max(width, MIN_HIT_PX)
    line = text_size("Ag")[1] + 3
    panels_h = max(p.shape[0] for p in panels)
    canvas = Image.new("RGB", (width, panels_h + 4 + line * len(labels)), _BACKGROUND)
    x = 0
    for panel in panels:
        paste(canvas, panel, x, 0)
        x += panel.shape[1] + gap
    colours = [_INK] + [_MUTED] * (len(labels) - 1)
    _label_lines(canvas, list(zip(labels, colours, strict=True)), 0, panels_h + 4, width)
    return np.asarray(canvas)


def grid(tiles: Sequence[np.ndarray], title: Sequence[str], columns: int | None = None
         ) -> np.ndarray:
    """`tiles` in rows of `columns` (default: a square-ish grid), under the `title` lines."""
    line = text_size("Ag", 14)[1] + 4
    head = _MARGIN + line * len(title) + 4
    if not tiles:
        tiles = [np.full((MIN_HIT_PX // 2, MIN_HIT_PX, 3), _BACKGROUND, np.uint8)]
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_h = max(t.shape[0] for t in tiles) + _MARGIN
    cell_w = max(t.shape[1] for t in tiles) + 3 * _MARGIN  # tiles apart, a hit's panels close
    width = max(columns * cell_w + _MARGIN,
                max(text_size(t, 14)[0] for t in title) + 2 * _MARGIN)
    canvas = Image.new("RGB", (width, head + rows * cell_h), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(title):
        draw.text((_MARGIN, _MARGIN + k * line), text, fill=_INK if k == 0 else _MUTED,
                  font=font(14))
    for k, tile in enumerate(tiles):
        row, col = divmod(k, columns)
        paste(canvas, tile, _MARGIN + col * cell_w, head + row * cell_h)
    return np.asarray(canvas)


def _split_words(split: str) -> str:
    return "all samples" if split == "all" else f"the {split} split"


def filter_picture(report: Any, top: Any) -> np.ndarray:
    """The picture of one `FilterTop` of `report`: its hits, best first."""
    tiles = []
    for hit in top.hits[:MAX_TILES]:
        file = report.files[hit.sample] if report.files is not None else None
        labels = [f"#{hit.sample}   {number(hit.activation)}"]
        if file:  # with its folder: a class folder names the class
            labels.append("/".join(Path(file).parts[-2:]))
        tiles.append(hit_tile(report.samples[hit.sample], hit.box, labels))
    shown = (f"the {len(top.hits)} samples that excite it most" if len(top.hits) <= MAX_TILES
             else f"the best {MAX_TILES} of its {len(top.hits)} samples")
    title = [f"{report.layer}, filter {top.filter}: {shown} (over {_split_words(report.split)})",
             "each: sample index, largest activation; red: the input region the "
             "maximising position sees" + ("" if not tiles else ", beside it its crop")]
    return grid(tiles, title)


def map_picture(sample: np.ndarray, values: np.ndarray, title: Sequence[str],
                cmap: str = "magma") -> np.ndarray:
    """`values` (H, W) over the image `sample` (C, H, W): the input, the map blended over
    it (min–max scaled with `cmap`), and a colour bar with the map's own minimum and
    maximum, under the `title` lines. A map of another size is resized to the image's."""
    picture = sample_image(sample)
    height, width = picture.shape[:2]
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if v.shape != (height, width):
        v = np.asarray(Image.fromarray(v.astype(np.float32)).resize(
            (width, height), Image.Resampling.BILINEAR), np.float64)
    lo, hi = value_range(v)
    heat = colorize(v, cmap, lo, hi).astype(np.float64)
    gray = picture.astype(np.float64).mean(axis=2, keepdims=True)
    over = np.rint(0.35 * gray + 0.65 * heat).astype(np.uint8)
    scale = scale_for(height, width, MIN_MAP_PX)
    panels = [scale_up(picture, scale), scale_up(over, scale)]
    bar = colour_bar(lo, hi, panels[0].shape[0], cmap)
    captions = ["the image", "the map over it", "scale"]
    line = text_size("Ag", 14)[1] + 4
    head = _MARGIN + line * len(title) + 4
    body_w = sum(p.shape[1] for p in panels) + bar.shape[1] + _MARGIN * 2
    canvas_w = max(body_w, max(text_size(t, 14)[0] for t in title)) + 2 * _MARGIN
    body_h = max(panels[0].shape[0], bar.shape[0])
    canvas = Image.new("RGB", (canvas_w, head + body_h + line + _MARGIN), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(title):
        draw.text((_MARGIN, _MARGIN + k * line), text, fill=_INK if k == 0 else _MUTED,
                  font=font(14))
    x = _MARGIN
    for img, caption in zip([*panels, bar], captions, strict=True):
        paste(canvas, img, x, head)
        draw.text((x, head + body_h + 2), fit_text(caption, img.shape[1]), fill=_MUTED,
                  font=font())
        x += img.shape[1] + _MARGIN
    return np.asarray(canvas)


def _image_titles(image: dict[str, Any], what: str) -> list[str]:
    name = image.get("class")
    cls = f"class '{name}'" if name is not None else f"class {image.get('class_index')}"
    file = image.get("file")
    where = f" of {Path(file).name}" if file else ""
    if what == "occlusion":
        return [f"Occlusion{where}: how much the score of {cls} drops",
                "when a patch covers each pixel (min-max scaled)"]
    layer = image.get("grad_cam_layer")
    return [f"Grad-CAM{where} for {cls}" + (f" at {layer}" if layer else ""),
            "where that layer's evidence for the class lies (min-max scaled)"]


def write_report_pngs(report: Any, out_dir: str | Path) -> list[Path]:
    """Write the pictures of a `LayerReport` into `out_dir` (created when missing):
    `<layer>_filter_<i>.png` per filter (its top hits, best first, at most MAX_TILES: each
    sample scaled up with its receptive-field box, beside it the box's crop, labelled with
    the sample index, the activation and the file's folder and name), and with an image `occlusion.png` and
    `grad_cam.png` (each map over the image, min–max scaled, with a colour bar of its
    scale). Returns the
    paths written, in that order. `report.samples` maps each hit's sample index to the
    raw sample. Raises OSError when the folder or a file cannot be written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for top in report.filters:
        # Named by layer: pictures of another layer in the same folder stay apart.
        path = folder / f"{report.layer}_filter_{top.filter}.png"
        Image.fromarray(filter_picture(report, top)).save(path, format="PNG")
        written.append(path)
    image = getattr(report, "image", None)
    if image:
        for what in ("occlusion", "grad_cam"):
            if image.get(what) is None:
                continue
            path = folder / f"{what}.png"
            picture = map_picture(image["input"], image[what], _image_titles(image, what))
            Image.fromarray(picture).save(path, format="PNG")
            written.append(path)
    return written
