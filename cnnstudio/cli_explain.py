"""`cnnstudio explain`: what each filter of a layer responds to, headless.

For every filter of layer ID, the K dataset samples that excite it most (with the input
region the maximising position sees); with `--image`, occlusion and Grad-CAM maps for one
image; `-o DIR` writes them as PNG pictures and the numbers as `report.json`. Imported only
when the command runs: it imports torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cnnstudio.cli_common import EXIT_OK, EXIT_PROBLEMS, UsageError, fail, load_project
from cnnstudio.cli_lines import DataProgress
from cnnstudio.train.model_io import DataRequest, Preprocessing, TrainedModel, read_image

_SHOWN_CHOICES = 8  # layer ids an "unknown layer" line names


def map_layers(project: Any) -> list[str]:
    """The ids of the layers with feature maps (a channel axis and a spatial one), in the
    network's order."""
    from cnnstudio.core.shapes import infer_shapes

    inference = infer_shapes(project.graph, task=project.task)
    shapes = {node_id: info.shape for node_id, info in inference.nodes.items()}
    order = [i for i in inference.order if project.graph.node(i).type != "Input"]
    return [i for i in order if shapes.get(i) is not None and len(shapes[i]) >= 2]


def _check_layer(project: Any, layer: str) -> None:
    """An unknown id or one that is the Input is a UsageError naming a few valid ids."""
    maps = map_layers(project)
    if layer in project.graph and project.graph.node(layer).type != "Input":
        return
    shown = ", ".join(maps[:_SHOWN_CHOICES]) + (", …" if len(maps) > _SHOWN_CHOICES else "")
    what = "the Input, not a layer" if layer in project.graph else "no layer of this network"
    hint = f"; layers with feature maps: {shown}" if maps else ""
    raise UsageError(f"--layer {layer!r} is {what}{hint} (see 'cnnstudio summary')")


def _output_folder(given: str | None) -> Path | None:
    """-o's folder, created now (before minutes of work): a UsageError when it cannot be."""
    if given is None:
        return None
    if not given.strip():
        raise UsageError("-o is empty: give the folder to write the pictures to")
    folder = Path(given)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {given}: not a folder (the pictures go into a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"-o {given}: cannot create the folder: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {given}: cannot write to this folder")
    return folder


def _model(project: Any, dataset: Any) -> TrainedModel:
    """The project's trained model, else the untrained network as training starts it.
    Saved weights whose run recorded no preprocessing get the data's."""
    from cnnstudio.project import fill_data

    normalize = bool(fill_data(project.data)["normalize"])
    model = TrainedModel.saved(project)
    if model is not None:
        return model
    context = {"mean": dataset.mean, "std": dataset.std, "normalize": normalize,
               "class_names": list(dataset.class_names)}
    if project.weights is not None:
        return TrainedModel(project.graph.copy(), project.weights,
                            Preprocessing.of_samples(context), project.task, "the saved weights")
    return TrainedModel.initial(project, context)


def _table(report: Any, model: TrainedModel, samples: int) -> str:
    """The report as text: one row per hit, filter by filter."""
    split = "all samples" if report.split == "all" else f"the {report.split} split"
    kind = model.graph.node(report.layer).type
    with_files = any(f is not None for f in report.files or ())
    lines = [f"layer {report.layer} ({kind}), {len(report.filters)} filters: the samples of"
             f" {split} ({samples}) that excite each most; weights: {model.state}",
             f"{'filter':>6}  {'rank':>4}  {'sample':>6}  {'activation':>11}  "
             f"{'box [y0, x0, y1, x1]':<20}" + ("  file" if with_files else "")]
    for top in report.filters:
        for rank, hit in enumerate(top.hits, 1):
            box = "—" if hit.box is None else "[" + ", ".join(str(int(v)) for v in hit.box) + "]"
            file = report.files[hit.sample] if with_files else None
            row = (f"{top.filter:>6}  {rank:>4}  {hit.sample:>6}  {hit.activation:>11.5g}"
                   f"  {box:<20}")
            lines.append(f"{row}  {file or '—'}" if with_files else row.rstrip())
    image = report.image
    if image:
        name = image.get("class")
        lines.append(f"image {image.get('file')}: occlusion and Grad-CAM (at"
                     f" {image.get('grad_cam_layer')}) for class"
                     f" {name if name is not None else image.get('class_index')}")
    return "\n".join(lines)


def _printable(text: str, doc: dict[str, Any] | None = None) -> str:
    """`text` as stdout can encode it: a file name that is not UTF-8 (kept as surrogates)
    or not in the terminal's encoding is escaped — for JSON (`doc`), as JSON escapes."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        if doc is not None:
            return json.dumps(doc, ensure_ascii=True)
        return text.encode(encoding, "backslashreplace").decode(encoding, "replace")


def _split_size(dataset: Any, split: str) -> int:
    return len(dataset.x) if split == "all" else len(dataset.splits.get(split, ()))


def cmd_explain(args: argparse.Namespace) -> int:
    """`cnnstudio explain PROJECT --layer ID [--top K] [--split S] [--image IMG] [--json]
    [-o DIR]`: the table (or JSON) of the samples that excite each filter of the layer
    most, and with -o the pictures and report.json. Returns EXIT_OK, or EXIT_PROBLEMS
    when the network cannot be built; raises UsageError (status 2, one line) for bad
    arguments, an unusable image, data that cannot be loaded or a folder that cannot be
    written."""
    from cnnstudio.core.errors import FormatError, GraphError, with_more
    from cnnstudio.core.shapes import infer_shapes
    from cnnstudio.data import DataError
    from cnnstudio.nn import BuildError, WeightsError
    from cnnstudio.nn.explain import explain_layer
    from cnnstudio.nn.explain.report import check_image

    if args.top < 1:
        raise UsageError("--top must be at least 1")
    project = load_project(args.project)
    _check_layer(project, args.layer)
    image = None
    if args.image is not None:
        if not args.image.strip():
            raise UsageError("--image is empty: give an image file")
        try:
            image = read_image(project.graph, args.image)
            check_image(project.task, tuple(image.shape))  # before the data and the search
        except ValueError as err:
            raise UsageError(f"--image: {err}") from None
    folder = _output_folder(args.output)
    terminal = not args.json and sys.stderr.isatty()
    try:
        dataset = DataRequest.of(project).load(DataProgress(sys.stderr) if terminal else None)
    except (DataError, GraphError, FormatError) as err:
        raise UsageError(f"cannot load the data: {err}") from None
    # Only errors that stop the network from running: a head of another class count
    # than the data's still has filters worth seeing.
    inference = infer_shapes(project.graph, task=project.task)
    if inference.errors:
        fail(f"the network has errors: {with_more(inference.errors)}")
        return EXIT_PROBLEMS
    progress = DataProgress(sys.stderr, "") if terminal else None
    try:
        model = _model(project, dataset)
        model.module()
        report = explain_layer(model, dataset, args.layer, k=args.top, split=args.split,
                               image=image, image_file=args.image, progress=progress)
    except (BuildError, WeightsError) as err:
        fail(str(err))
        return EXIT_PROBLEMS
    except (ValueError, KeyError) as err:
        raise UsageError(str(err.args[0]) if err.args else str(err)) from None
    finally:
        if progress is not None:
            progress.end_line()
    doc = report.to_json()
    if folder is not None:
        from cnnstudio.nn.explain.pictures import write_report_pngs

        try:
            written = write_report_pngs(report, folder)
            # ASCII: a file name that is not UTF-8 (kept as surrogates) stays writable
            (folder / "report.json").write_text(json.dumps(doc, ensure_ascii=True, indent=1)
                                                + "\n", encoding="utf-8")
        except OSError as err:
            raise UsageError(f"-o {args.output}: cannot write: {err.strerror or err}") from None
    if args.json:
        print(_printable(json.dumps(doc, ensure_ascii=False), doc))
    else:
        print(_printable(_table(report, model, _split_size(dataset, report.split))))
        if folder is not None:
            print(f"wrote {len(written)} picture(s) and report.json to {folder}")
    # Said last, after everything succeeded: a failure stays one line.
    if model.untrained:
        print(f"cnnstudio: the project has no trained weights: these are the filters of the"
              f" untrained network (random initialisation, seed {model.seed})", file=sys.stderr)
    if report.split != args.split:
        print(f"cnnstudio: the {args.split} split is empty: searched all samples",
              file=sys.stderr)
    return EXIT_OK
