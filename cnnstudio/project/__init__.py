"""Project files: schema v1 with migrations, settings defaults, atomic `.cnnproj` I/O.

No torch and no Qt here (an import-linter contract checks it), and nothing is unpickled.
"""

from cnnstudio.project.io import ProjectError, read_project, write_project
from cnnstudio.project.model import Project
from cnnstudio.project.paths import absolute_data_paths, rebase_data_paths
from cnnstudio.project.schema import CURRENT_VERSION, project_from_dict, project_to_dict
from cnnstudio.project.settings import fill_data, fill_training
from cnnstudio.project.weights import WeightsError, weights_header

__all__ = [
    "CURRENT_VERSION",
    "Project",
    "ProjectError",
    "WeightsError",
    "absolute_data_paths",
    "fill_data",
    "fill_training",
    "project_from_dict",
    "project_to_dict",
    "read_project",
    "rebase_data_paths",
    "weights_header",
    "write_project",
]
