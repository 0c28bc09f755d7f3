"""explain_layer: the split it searches, the samples and files it keeps, the maps for one
image, and the exact `explain --json` shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from cnnstudio.core.templates import get_template
from cnnstudio.nn.explain import Cancelled, LayerReport, explain_layer, top_activations
from cnnstudio.nn.internals import scale_cam
from cnnstudio.train.model_io import Preprocessing, TrainedModel


@dataclass
class FakeDataset:
    """The parts of a Dataset explain_layer reads."""

    x: torch.Tensor
    splits: dict[str, torch.Tensor]
    class_names: list[str]
    files: list[str] | None = None
    y: torch.Tensor = field(default_factory=lambda: torch.zeros(0))


def _setup(val: int = 20, files: bool = True) -> tuple[TrainedModel, FakeDataset]:
    prep = Preprocessing([0.3], [0.4], True, [str(d) for d in range(10)])
    model = TrainedModel(get_template("digits-lenet").graph(), None, prep, seed=3)
    x = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(0))
    order = torch.randperm(60, generator=torch.Generator().manual_seed(1))
    splits = {"train": order[val:], "val": order[:val]}
    names = [f"/data/{i % 10}/img{i:03d}.png" for i in range(60)] if files else None
    return model, FakeDataset(x, splits, prep.class_names, names)


def test_the_report_searches_the_chosen_split_and_keeps_the_hit_samples():
    model, dataset = _setup()
    stages: list[tuple[str, int, int]] = []
    report = explain_layer(model, dataset, "conv2", k=4, split="val",
                           progress=lambda s, d, t: stages.append((s, d, t)))
    val = dataset.splits["val"]
    expected = top_activations(model.module(), model.graph, "conv2", dataset.x[val],
                               model.prep.to_float, 4, sample_ids=val.tolist())
    assert report.layer == "conv2" and report.split == "val"
    assert report.filters == expected and len(report.filters) == 32
    assert {h.sample for t in report.filters for h in t.hits} <= set(val.tolist())
    assert set(report.samples) == {h.sample for t in report.filters for h in t.hits}
    for index, sample in report.samples.items():
        np.testing.assert_array_equal(sample, dataset.x[index].numpy())
    assert report.files == dataset.files and report.image is None
    assert stages[-1][1:] == (20, 20)
    train = explain_layer(model, dataset, "conv2", k=2, split="train")
    assert {h.sample for t in train.filters for h in t.hits} <= set(
        dataset.splits["train"].tolist())


def test_an_empty_validation_split_falls_back_to_every_sample_and_files_may_be_missing():
    model, dataset = _setup(val=0, files=False)
    report = explain_layer(model, dataset, "pool1", k=3)
    assert report.split == "all"
    expected = top_activations(model.module(), model.graph, "pool1", dataset.x,
                               model.prep.to_float, 3)
    assert report.filters == expected
    assert report.files == [None] * 60
    assert explain_layer(model, dataset, "pool1", k=1, split="all").split == "all"


def test_json_has_exactly_the_documented_shape():
    model, dataset = _setup()
    image = dataset.x[5].numpy()
    report = explain_layer(model, dataset, "conv1", k=3, image=image, image_file="my.png")
    doc = json.loads(json.dumps(report.to_json()))  # plain JSON types only
    assert set(doc) == {"layer", "split", "filters", "image"}
    assert doc["layer"] == "conv1" and doc["split"] == "val"
    assert [f["filter"] for f in doc["filters"]] == list(range(16))
    for entry, top in zip(doc["filters"], report.filters, strict=True):
        assert set(entry) == {"filter", "top"} and len(entry["top"]) == 3
        for hit, kept in zip(entry["top"], top.hits, strict=True):
            assert set(hit) == {"sample", "file", "activation", "box"}
            assert hit["sample"] == kept.sample
            assert hit["file"] == dataset.files[kept.sample]
            assert hit["activation"] == pytest.approx(kept.activation)
            assert hit["box"] == list(kept.box) and len(hit["box"]) == 4
    assert doc["image"] == {"file": "my.png", "class": report.image["class"],
                            "grad_cam_layer": report.image["grad_cam_layer"]}
    without = explain_layer(model, dataset, "fc1", k=1).to_json()
    assert set(without) == {"layer", "split", "filters"}
    assert without["filters"][0]["top"][0]["box"] is None  # a Linear unit: no box


def test_the_image_gets_occlusion_and_grad_cam_for_the_predicted_class():
    model, dataset = _setup()
    image = dataset.x[7].numpy()
    report = explain_layer(model, dataset, "conv2", k=1, image=image, image_file="a.png")
    maps = report.image
    probabilities = model.probabilities(image[None])[0]
    assert maps["class_index"] == int(np.argmax(probabilities))
    assert maps["class"] == model.prep.class_names[maps["class_index"]]
    assert maps["probability"] == pytest.approx(float(probabilities.max()))
    assert maps["occlusion"].shape == (8, 8) and maps["grad_cam"].shape == (8, 8)
    cam, layer = model.grad_cam(image, maps["class_index"], "conv2")
    np.testing.assert_allclose(maps["grad_cam"], cam)
    assert maps["grad_cam_layer"] == layer
    assert scale_cam(maps["occlusion"]).max() <= 1.0
    np.testing.assert_array_equal(maps["input"], image)


def test_bad_requests_get_one_line_value_errors_and_cancel_raises():
    model, dataset = _setup()
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain_layer(model, dataset, "nope")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        explain_layer(model, dataset, "conv1", split="test")
    with pytest.raises(ValueError, match="takes"):
        explain_layer(model, dataset, "conv1", image=np.zeros((1, 9, 9), np.uint8))
    with pytest.raises(Cancelled):
        explain_layer(model, dataset, "conv1", cancelled=lambda: True)
    segmentation = TrainedModel(model.graph, None, model.prep, task="segmentation")
    with pytest.raises(ValueError, match="classification"):
        explain_layer(segmentation, dataset, "conv1", image=dataset.x[0].numpy())
    assert isinstance(explain_layer(model, dataset, "conv1", k=1), LayerReport)


def test_an_image_that_cannot_be_explained_is_refused_before_the_search(monkeypatch):
    from cnnstudio.nn.explain import report as report_module

    def no_search(*args, **kwargs):
        raise AssertionError("searched the samples before refusing the image")

    monkeypatch.setattr(report_module, "top_activations", no_search)
    model, dataset = _setup()
    segmentation = TrainedModel(model.graph, None, model.prep, task="segmentation")
    with pytest.raises(ValueError, match="classification"):
        explain_layer(segmentation, dataset, "conv1", image=dataset.x[0].numpy())
    with pytest.raises(ValueError, match="takes"):
        explain_layer(model, dataset, "conv1", image=np.zeros((1, 9, 9), np.uint8))
