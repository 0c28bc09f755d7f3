"""The explain pictures: colour maps, samples as pictures, boxes and the report's PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.data.dataset import to_float
from cnnstudio.nn.explain import FilterTop, LayerReport, TopHit
from cnnstudio.nn.explain.pictures import (
    BOX_COLOUR,
    CMAPS,
    MAX_TILES,
    MIN_HIT_PX,
    SIGNAL_HEIGHT,
    colorize,
    colour_bar,
    colour_table,
    draw_box,
    filter_picture,
    hit_tile,
    map_picture,
    sample_image,
    write_report_pngs,
)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def test_sequential_maps_run_dark_to_light_and_the_diverging_one_is_light_in_the_middle():
    for name in CMAPS:
        table = colour_table(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    for name in ("viridis", "magma", "gray"):
        assert (np.diff(luminance(colour_table(name))) > -1.0).all()  # never darker
        assert luminance(colour_table(name)[255]) - luminance(colour_table(name)[0]) > 150
    diverging = luminance(colour_table("diverging"))
    assert diverging.argmax() in range(120, 136)
    assert diverging[128] > diverging[0] + 100 and diverging[128] > diverging[255] + 100
    with pytest.raises(ValueError, match="unknown colour map"):
        colour_table("jet")


def test_colorize_maps_lo_and_hi_to_the_ends_and_clips():
    table = colour_table("viridis")
    values = np.array([[-1.0, 0.0, 0.5], [1.0, 3.0, np.nan]])
    out = colorize(values, "viridis", lo=0.0, hi=1.0)
    assert out.shape == (2, 3, 3)
    expected = table[[[0, 0, 128], [255, 255, 0]]]
    np.testing.assert_array_equal(out, expected)
    # defaults: the finite minimum and maximum; the diverging map centres zero
    np.testing.assert_array_equal(colorize(np.array([2.0, 4.0])), table[[0, 255]])
    div = colour_table("diverging")
    np.testing.assert_array_equal(colorize(np.array([-1.0, 0.0, 3.0]), "diverging"),
                                  div[[np.rint((-1 / 3 + 1) / 2 * 255).astype(int), 128, 255]])
    np.testing.assert_array_equal(colorize(np.zeros(4), "diverging"), div[[128] * 4])


def test_sample_image_shows_gray_rgb_and_float_samples_faithfully():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (1, 5, 7), dtype=np.uint8)
    pic = sample_image(gray)
    assert pic.shape == (5, 7, 3) and pic.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(pic[..., channel], gray[0])
    rgba = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    np.testing.assert_array_equal(sample_image(rgba), np.moveaxis(rgba[:3], 0, -1))
    floats = rng.normal(size=(1, 4, 4)).astype(np.float32)
    expected = (floats[0] - floats.min()) / (floats.max() - floats.min()) * 255
    np.testing.assert_allclose(sample_image(floats)[..., 0], expected, atol=0.51)


def test_sample_image_undoes_the_models_normalisation():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (3, 6, 6), dtype=np.uint8)
    mean, std = [0.2, 0.5, 0.7], [0.3, 0.25, 0.1]
    model_input = to_float(torch.from_numpy(raw[None]), mean, std)[0].numpy()
    shown = sample_image(model_input, mean, std).astype(int)
    np.testing.assert_array_less(np.abs(shown - np.moveaxis(raw, 0, -1)), 2)


def test_a_signal_is_a_plot_with_its_line_where_the_values_are():
    ramp = np.linspace(0.0, 1.0, 50, dtype=np.float32)[None]
    pic = sample_image(ramp)
    assert pic.shape == (SIGNAL_HEIGHT, 50, 3)
    bright = luminance(pic) > 150
    for column in (0, 10, 25, 49):
        rows = np.flatnonzero(bright[:, column])
        expected = (1 - ramp[0, column]) * (SIGNAL_HEIGHT - 1)
        assert rows.size and abs(rows.mean() - expected) <= 2


def test_draw_box_outlines_the_box_and_leaves_the_rest():
    img = np.zeros((10, 12, 3), np.uint8)
    out = draw_box(img, (2, 3, 7, 9))
    assert out is not img and (img == 0).all()
    red = (out == BOX_COLOUR).all(axis=2)
    border = np.zeros((10, 12), bool)
    border[2:7, 3:9] = True
    border[3:6, 4:8] = False
    np.testing.assert_array_equal(red, border)
    clipped = (draw_box(img, (-5, -5, 4, 40)) == BOX_COLOUR).all(axis=2)
    assert clipped[3, :].all() and clipped[:4, 0].all() and clipped[:4, 11].all()
    np.testing.assert_array_equal(draw_box(img, None), img)


def test_a_hit_tile_shows_the_sample_scaled_up_and_the_crop_of_its_box():
    rng = np.random.default_rng(2)
    sample = rng.integers(0, 256, (1, 8, 8), dtype=np.uint8)
    box = (2, 1, 5, 6)
    tile = hit_tile(sample, box, ["#3   1.5", "three.png"])
    scale = MIN_HIT_PX // 8
    big = np.kron(sample[0], np.ones((scale, scale), np.uint8))
    whole = tile[:8 * scale, :8 * scale, 0]
    away = np.ones_like(whole, bool)  # away from the drawn outline (and its halo)
    away[box[0] * scale - 2:box[2] * scale + 2, box[1] * scale - 2:box[3] * scale + 2] = False
    away[box[0] * scale + 3:box[2] * scale - 3, box[1] * scale + 3:box[3] * scale - 3] = True
    np.testing.assert_array_equal(whole[away], big[away])
    # the crop beside it, scaled to the same height, inside a 2-pixel frame
    crop = sample[0, 2:5, 1:6]
    crop_scale = 8 * scale // 3
    left = 8 * scale + 4
    inside = tile[2:2 + 3 * crop_scale, left + 2:left + 2 + 5 * crop_scale, 0]
    np.testing.assert_array_equal(inside, np.kron(crop, np.ones((crop_scale, crop_scale),
                                                                np.uint8)))
    assert tile.shape[0] > 8 * scale + 20  # the label lines below


def test_a_map_picture_has_a_colour_bar_from_the_maximum_down_to_the_minimum():
    table = colour_table("magma")
    bar = colour_bar(-2.0, 5.0, 200)
    assert bar.shape[0] == 200
    rows = np.arange(1, 199)  # inside the outline: row r shows 1 - r / 199 of the range
    np.testing.assert_array_equal(bar[rows, 8], table[np.rint((1 - rows / 199) * 255).astype(int)])
    picture = map_picture(np.zeros((1, 8, 8), np.uint8), np.arange(64.0).reshape(8, 8),
                          ["title"])
    assert picture.shape[1] >= 2 * 192 and picture.shape[0] >= 192


def _report(tmp_path: Path, image: bool) -> LayerReport:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    filters = [FilterTop(0, [TopHit(4, 2.5, (3, 3), (2, 2, 5, 5)), TopHit(1, 1.0, (0, 0),
                                                                          (0, 0, 2, 2))]),
               FilterTop(1, [TopHit(5, 0.5, (), None)])]
    report = LayerReport("conv1", "val", filters, [str(tmp_path / f"{i}.png") for i in range(6)],
                         {i: x[i] for i in (1, 4, 5)})
    if image:
        report.image = {"file": "seven.png", "class_index": 7, "class": "seven",
                        "probability": 0.9, "occlusion": rng.normal(size=(8, 8)),
                        "grad_cam": None, "grad_cam_layer": None, "input": x[0]}
    return report


def test_write_report_pngs_writes_one_picture_per_filter_and_the_maps(tmp_path: Path):
    out = tmp_path / "deep" / "pictures"
    written = write_report_pngs(_report(tmp_path, image=True), out)
    # no Grad-CAM (None): only the occlusion map beside the filters
    assert written == [out / "conv1_filter_0.png", out / "conv1_filter_1.png",
                       out / "occlusion.png"]
    for path in written:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.mode == "RGB"
            assert min(img.size) >= MIN_HIT_PX and max(img.size) < 2000
    with Image.open(out / "conv1_filter_0.png") as img:
        assert img.size[0] >= 2 * MIN_HIT_PX  # two hits side by side
    assert write_report_pngs(_report(tmp_path, image=False), tmp_path / "b") == [
        tmp_path / "b" / "conv1_filter_0.png", tmp_path / "b" / "conv1_filter_1.png"]


def test_a_folder_that_cannot_be_made_raises_oserror(tmp_path: Path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        write_report_pngs(_report(tmp_path, image=False), blocker)
    with pytest.raises(OSError):
        write_report_pngs(_report(tmp_path, image=False), blocker / "below")


def test_an_empty_box_draws_like_no_box_not_a_crop_of_the_whole_sample():
    sample = np.random.default_rng(4).integers(0, 256, (1, 8, 8), dtype=np.uint8)
    unboxed = hit_tile(sample, None, ["#0   1"])
    np.testing.assert_array_equal(hit_tile(sample, (0, 0, -1, -1), ["#0   1"]), unboxed)
    np.testing.assert_array_equal(hit_tile(sample, (3, 3, 3, 5), ["#0   1"]), unboxed)
    assert unboxed.shape[1] < 2 * MIN_HIT_PX  # the sample alone, no crop beside it


def test_a_filter_picture_draws_at_most_max_tiles_hits(tmp_path: Path):
    sample = np.random.default_rng(5).integers(0, 256, (1, 8, 8), dtype=np.uint8)

    def picture(hits: int) -> np.ndarray:
        top = FilterTop(0, [TopHit(i, float(-i), (1, 1), (0, 0, 3, 3)) for i in range(hits)])
        report = LayerReport("conv1", "all", [top], [None] * hits,
                             {i: sample for i in range(hits)})
        return filter_picture(report, top)

    capped, many = picture(MAX_TILES), picture(5 * MAX_TILES)
    assert many.shape == capped.shape  # the best MAX_TILES only
    assert picture(MAX_TILES // 4).shape[0] < capped.shape[0]
