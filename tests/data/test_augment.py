"""Batched augmentation: flips, padded random crops, rotations, masks moving with images."""

from __future__ import annotations

import pytest
import torch

from cnnstudio.data import DataError, augment_batch
from cnnstudio.data.augment import rotate_batch, shift_batch


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(n: int = 8, c: int = 3, h: int = 6, w: int = 7) -> torch.Tensor:
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w) / 100


def test_no_settings_is_identity() -> None:
    x, y = batch(), torch.arange(8)
    out, labels = augment_batch(x, y, {}, gen())
    assert torch.equal(out, x) and torch.equal(labels, y)
    out, _ = augment_batch(x, None, {"flip": False, "crop_padding": 0, "rotation": 0}, gen())
    assert torch.equal(out, x)


def test_flip_always_equals_torch_flip() -> None:
    x = batch()
    out, _ = augment_batch(x, None, {"flip": 1.0}, gen())
    assert torch.equal(out, torch.flip(x, dims=[-1]))


def test_flip_half_the_samples_and_masks_follow() -> None:
    masks = torch.arange(64 * 6 * 7).view(64, 6, 7)
    x = masks[:, None].float()
    before = x.clone()
    out, out_masks = augment_batch(x, masks, {"flip": True}, gen(1))
    flipped = [bool(torch.equal(out[i], x[i].flip(-1))) for i in range(64)]
    kept = [bool(torch.equal(out[i], x[i])) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48
    assert torch.equal(out_masks, out[:, 0].long())
    assert torch.equal(x, before)


def test_shift_offsets_by_hand() -> None:
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    centre = shift_batch(x, 1, torch.tensor([[1, 1]]))
    assert torch.equal(centre, x)
    corner = shift_batch(x, 1, torch.tensor([[0, 0]]))  # content moves right and down by 1
    assert corner[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    masks = shift_batch(x[:, 0].long(), 1, torch.tensor([[2, 0]]))
    assert masks[0].tolist() == [[0, 4, 5], [0, 7, 8], [0, 0, 0]]


def test_crop_with_padding_keeps_size_and_content() -> None:
    x = torch.rand(16, 3, 10, 12, generator=gen(5)) + 1  # never zero: padding is visible
    out, _ = augment_batch(x, None, {"crop_padding": 4}, gen(2))
    assert out.shape == x.shape
    for i in range(16):
        nonzero = out[i, 0] != 0
        rows, cols = nonzero.any(1).nonzero(), nonzero.any(0).nonzero()
        # the kept block is a contiguous piece of the original at some shift
        top, left = int(rows[0]), int(cols[0])
        h, w = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
        block = out[i, :, top:top + h, left:left + w]
        src_top = 0 if top > 0 else 10 - h
        src_left = 0 if left > 0 else 12 - w
        assert torch.equal(block, x[i, :, src_top:src_top + h, src_left:src_left + w])


def test_rotation_zero_is_identity_and_ninety_is_rot90() -> None:
    x = torch.rand(4, 2, 9, 9, generator=gen(3))
    torch.testing.assert_close(rotate_batch(x, torch.zeros(4)), x)
    torch.testing.assert_close(rotate_batch(x, torch.full((4,), 90.0)),
                               torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    masks = torch.randint(0, 5, (4, 9, 9), generator=gen(4))
    assert torch.equal(rotate_batch(masks, torch.full((4,), -90.0), nearest=True),
                       torch.rot90(masks, -1, dims=(-2, -1)))


def test_rotation_on_non_square_images_keeps_angles() -> None:
    x = torch.arange(24.0).view(1, 1, 4, 6)
    torch.testing.assert_close(rotate_batch(x, torch.tensor([180.0])), x.flip(-1).flip(-2),
                               atol=1e-4, rtol=0)


def test_masks_move_with_images_under_every_transform() -> None:
    masks = torch.zeros(32, 16, 16, dtype=torch.int64)
    masks[:, 3:9, 2:7] = 1
    masks[:, 10:14, 8:15] = 2
    x = (masks[:, None] > 0).float()
    out, out_masks = augment_batch(x, masks, {"flip": True, "crop_padding": 3, "rotation": 20},
                                   gen(9))
    assert out_masks.dtype == torch.int64 and out_masks.shape == masks.shape
    assert set(out_masks.unique().tolist()) <= {0, 1, 2}
    fg_img, fg_mask = out[:, 0] > 0.5, out_masks > 0
    iou = (fg_img & fg_mask).sum() / (fg_img | fg_mask).sum()
    assert iou > 0.9
    assert not torch.equal(out_masks, masks)


def test_same_generator_seed_same_result() -> None:
    x = batch(n=16)
    settings = {"flip": True, "crop_padding": 2, "rotation": 15}
    a, _ = augment_batch(x, None, settings, gen(11))
    b, _ = augment_batch(x, None, settings, gen(11))
    c, _ = augment_batch(x, None, settings, gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_uint8_rotation_keeps_dtype() -> None:
    x = torch.full((2, 1, 8, 8), 200, dtype=torch.uint8)
    out, _ = augment_batch(x, None, {"rotation": 30}, gen())
    assert out.dtype == torch.uint8 and out[:, :, 4, 4].tolist() == [[200], [200]]


def test_signals_flip_and_shift_but_not_rotate() -> None:
    x = torch.arange(1.0, 7.0).view(1, 1, 6)
    out, _ = augment_batch(x, torch.tensor([0]), {"flip": 1.0}, gen())
    assert out[0, 0].tolist() == [6, 5, 4, 3, 2, 1]
    assert shift_batch(x, 2, torch.tensor([[0]]))[0, 0].tolist() == [0, 0, 1, 2, 3, 4]
    out, _ = augment_batch(x, None, {"crop_padding": 2}, gen())
    assert out.shape == x.shape
    with pytest.raises(DataError, match="rotation augmentation needs images"):
        augment_batch(x, None, {"rotation": 5}, gen())


@pytest.mark.parametrize("settings", [
    {"flip": "yes"}, {"flip": 2}, {"crop_padding": -1}, {"crop_padding": 1.5},
    {"rotation": 400}, {"rotation": "10"},
])
def test_invalid_settings(settings: dict) -> None:
    with pytest.raises(DataError, match="augmentation"):
        augment_batch(batch(), None, settings, gen())
