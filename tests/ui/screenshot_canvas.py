"""Render a template in the canvas to a PNG, to look at (not a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_canvas.py \
        /tmp/canvas.png [TEMPLATE] [--fit] [--dark] [--select ID] [--problem]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("png")
    parser.add_argument("template", nargs="?", default="resnet")
    parser.add_argument("--fit", action="store_true", help="fit the whole graph")
    parser.add_argument("--dark", action="store_true", help="a dark palette")
    parser.add_argument("--select", default=None, help="node id to select")
    parser.add_argument("--problem", action="store_true", help="break a node to show errors")
    parser.add_argument("--scroll", type=float, default=0.0, help="scroll down this many px")
    args = parser.parse_args(argv)

    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from cnnstudio.core.templates import get_template
    from cnnstudio.project.model import Project
    from cnnstudio.ui.canvas import GraphView
    from cnnstudio.ui.document import Document

    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    if args.dark:
        pal = QPalette()
        for role, colour in [(QPalette.ColorRole.Window, "#2b2b2b"),
                             (QPalette.ColorRole.Base, "#1e1e1e"),
                             (QPalette.ColorRole.Text, "#e6e6e6"),
                             (QPalette.ColorRole.WindowText, "#e6e6e6"),
                             (QPalette.ColorRole.Highlight, "#3d8ee6")]:
            pal.setColor(role, QColor(colour))
        app.setPalette(pal)
    template = get_template(args.template)
    project = Project(name=template.title, task=template.task, graph=template.graph(),
                      data={"source": {"kind": "builtin", "name": template.dataset}})
    doc = Document(project)
    if args.problem:
        conv = next(n.id for n in doc.graph if n.type == "Conv2d")
        doc.graph.set_params(conv, {"out_channels": 8, "kernel_size": 64})
    view = GraphView(doc)
    view.resize(1280, 800)
    view.show()
    app.processEvents()
    if args.fit:
        view.fit_all()
    else:
        view.show_start()
    if args.scroll:
        bar = view.verticalScrollBar()
        bar.setValue(bar.value() + int(args.scroll))
    if args.select:
        doc.set_selection([args.select])
    view.graph_scene.refresh_inference()
    app.processEvents()
    ok = view.grab().save(args.png)
    print(f"saved {args.png}" if ok else f"could not save {args.png}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
