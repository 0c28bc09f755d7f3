"""The real-size sample networks (sample_projects/real-size/) are the architectures module's
graphs, saved: opening one shows exactly what `cnnstudio.core.architectures` builds.

After a deliberate change to the builders or the layout, regenerate them with
`python tests/test_real_size_samples.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnstudio.core import architectures
from cnnstudio.core.shapes import infer_shapes
from cnnstudio.project import Project, project_to_dict, read_project, write_project

FOLDER = Path(__file__).resolve().parents[1] / "sample_projects" / "real-size"
SAMPLES = {"resnet50": ("ResNet-50", architectures.resnet50, 25_557_032),
           "googlenet": ("GoogLeNet", architectures.googlenet, 6_624_904),
           "vgg16": ("VGG-16", architectures.vgg16, 138_357_544)}


def build(name: str) -> Project:
    title, builder, _ = SAMPLES[name]
    # ImageNet-sized: the data is the user's own folder of 1,000 classes (not shipped).
    return Project(name=title, graph=builder(),
                   data={"source": {"kind": "folder", "path": "imagenet"}, "val_fraction": 0.1})


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_saved_sample_is_what_the_builder_makes(name):
    saved = read_project(FOLDER / f"{name}.cnnproj")
    assert project_to_dict(saved) == project_to_dict(build(name)), (
        "regenerate with: python tests/test_real_size_samples.py")
    inference = infer_shapes(saved.graph)
    assert inference.problems == []
    assert sum(info.params for info in inference.nodes.values()) == SAMPLES[name][2]
    assert len(saved.graph.groups) > 0


if __name__ == "__main__":
    FOLDER.mkdir(parents=True, exist_ok=True)
    for sample in SAMPLES:
        write_project(build(sample), FOLDER / f"{sample}.cnnproj", backup=False)
        print("wrote", FOLDER / f"{sample}.cnnproj")
