"""Does the exported model's output fit its classes? A warning, not a refusal.

An export writes the class names of the run that trained the weights next to them; when
the classifier's output size differs from that class count (the network was edited, or
the data changed, after training), the outputs and the names do not line up. The export
still proceeds (the file is what the user asked for); this says so in one line.
"""

from __future__ import annotations

from cnnstudio.core.shapes import infer_shapes
from cnnstudio.project import Project
from cnnstudio.project.weights import trained_class_names

SHOWN_NAMES = 4


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return f" ({shown}{', …' if len(names) > SHOWN_NAMES else ''})" if names else ""


def class_count_warning(project: Project, data_classes: int | None = None) -> str | None:
    """One line when the model's output size differs from its class count: the trained
    run's class names when there are some, else `data_classes` (the loaded data's, or a
    built-in dataset's); None when they agree or nothing is known."""
    inference = infer_shapes(project.graph, task=project.task)
    if inference.errors or inference.output is None:
        return None  # the export itself refuses such a graph
    shape = inference.nodes[inference.output].shape
    if not shape:
        return None
    outputs = int(shape[0])
    segmentation = project.task == "segmentation"
    names = trained_class_names(project.runs)
    if names:
        count, where = len(names), f"the trained run has {len(names)} classes{_names(names)}"
    elif data_classes:
        count, where = int(data_classes), f"the data has {data_classes} classes"
    else:
        return None
    if outputs == count or (segmentation and count == 2 and outputs == 1):
        return None
    what = "network gives" if segmentation else "classifier gives"
    # Without a trained run no class names are written: say what will go wrong instead.
    why = ("its outputs and the class names do not match" if names
           else "it cannot be trained on this data as it is")
    return f"the {what} {outputs} output{'s' if outputs != 1 else ''} but {where}: {why}"
