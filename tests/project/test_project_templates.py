"""Save → load round-trips every template exactly, as .cnnproj (with weights) and .json."""

import pytest

from cnnstudio.core.templates import TEMPLATES
from cnnstudio.project import project_from_dict, project_to_dict, read_project, write_project


@pytest.mark.parametrize("name", list(TEMPLATES))
@pytest.mark.parametrize("suffix", [".cnnproj", ".json"])
def test_every_template_round_trips_exactly(tmp_path, name, suffix):
    from cnnstudio.nn import build_module, weights_to_bytes

    project = project_from_dict(TEMPLATES[name].project_dict())
    project.weights = weights_to_bytes(build_module(project.graph))
    path = tmp_path / f"{name}{suffix}"
    write_project(project, path)
    again = read_project(path)
    assert project_to_dict(again) == project_to_dict(project)
    assert again.weights == (project.weights if suffix == ".cnnproj" else None)
    write_project(again, tmp_path / f"second{suffix}")
    assert (tmp_path / f"second{suffix}").exists()
    assert project_to_dict(read_project(tmp_path / f"second{suffix}")) == project_to_dict(project)
