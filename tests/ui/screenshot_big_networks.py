"""Screenshots of real-size networks fitted in the main window, for a human to look at (not
collected as a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python \
        tests/ui/screenshot_big_networks.py [OUT_DIR] [--readme docs/images/resnet50-fit.png]

Opens ResNet-50, GoogLeNet (core.architectures), the U-Net template and the 1,000-node
block chain, each in a 1280×800 MainWindow, presses Fit (actionFit) and saves
`<name>-fit.png`; then shows the same network unfolded, fitted without folding
(`<name>-unfolded.png`: the level of detail at its smallest), and for ResNet-50 the summary
with "Fold blocks" on and Stage 2 opened (`resnet50-summary-blocks.png`). OUT_DIR defaults to
/tmp/n15/shots. `--readme PATH` also saves the fitted ResNet-50 with its folded summary there. Settings and
recovery files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


def _graphs() -> list[tuple[str, str, object]]:
    """(file stem, project name, graph or template name) per network."""
    from cnnstudio.core import architectures

    return [("resnet50", "ResNet-50", architectures.resnet50()),
            ("googlenet", "GoogLeNet", architectures.googlenet()),
            ("unet", "U-Net", "unet"),
            ("chain1000", "1,000-node chain", architectures.block_chain())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="/tmp/n15/shots")
    parser.add_argument("--readme", default=None, help="also save the fitted ResNet-50 with its folded summary here")
    parser.add_argument("--only", default=None, help="one network: resnet50, googlenet, "
                        "unet or chain1000")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="cnnstudio-shot-")
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = os.path.join(scratch, "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtGui import QAction

    from cnnstudio.project import Project
    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.confirm_unsaved = False
    window.show_error = lambda text: print(f"window error: {text}", file=sys.stderr)
    window.resize(1280, 800)
    window.show()

    def settle() -> None:
        # Edges far from the view are routed in later turns (16 ms apart): wait for them.
        import time

        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            app.processEvents()

    def save(name: str) -> Path:
        settle()
        path = out / name
        if not window.grab().save(str(path)):
            raise SystemExit(f"could not save {path}")
        print(f"saved {path}")
        return path

    fit = window.findChild(QAction, "actionFit")
    for stem, title, source in _graphs():
        if args.only and stem != args.only:
            continue
        if isinstance(source, str):
            window.new_project(source)
        else:
            # An image folder (classes unknown until read) rather than the default built-in
            # set, whose 10 classes would mark a 1000-class classifier as an error.
            data = {"source": {"kind": "folder", "path": "imagenet"}} \
                if stem in ("resnet50", "googlenet") else {}
            window.set_project(Project(name=title, graph=source, data=data))
        settle()
        fit.trigger()
        save(f"{stem}-fit.png")
        if stem == "resnet50":  # the summary with its blocks folded, Stage 2 opened
            panel = window.summary_panel
            panel.fold_blocks.setChecked(True)
            model = panel.table.model()
            stage = next(model.index(r, 0) for r in range(model.rowCount())
                         if model.index(r, 0).data() == "Stage 2")
            panel.table.expand(stage)
            shot = save(f"{stem}-summary-blocks.png")
            if args.readme:  # the README's picture: the fitted network and its folded summary
                Path(args.readme).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, args.readme)
                print(f"saved {args.readme}")
            panel.fold_blocks.setChecked(False)
        groups = window.project.graph.groups
        folded = [g.id for g in groups if g.collapsed]
        if folded:
            from cnnstudio.ui.canvas import editing

            editing.set_folded(window.view.graph_scene, folded, False)
            window.view.fit_all(fold=False)
            save(f"{stem}-unfolded.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
