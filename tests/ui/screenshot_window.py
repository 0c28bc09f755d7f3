"""Screenshot of the main window for a human to look at (not collected as a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_window.py \
        /tmp/window.png [TEMPLATE] [--select NODE] [--dark]

Opens the window at 1280×800 on a template (default: resnet), optionally selects a node,
and saves `window.grab()`. Settings and recovery files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from PySide6.QtGui import QColor, QPalette


def _dark_palette() -> QPalette:
    palette = QPalette()
    colors = {QPalette.ColorRole.Window: "#2b2d30", QPalette.ColorRole.WindowText: "#dfe1e5",
              QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282b",
              QPalette.ColorRole.Text: "#dfe1e5", QPalette.ColorRole.Button: "#35373b",
              QPalette.ColorRole.ButtonText: "#dfe1e5", QPalette.ColorRole.Highlight: "#2f65ca",
              QPalette.ColorRole.HighlightedText: "#ffffff",
              QPalette.ColorRole.PlaceholderText: "#8c8f94", QPalette.ColorRole.ToolTipBase:
              "#3c3f41", QPalette.ColorRole.ToolTipText: "#dfe1e5"}
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    return palette


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("template", nargs="?", default="resnet")
    parser.add_argument("--select", default=None)
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--dialog", action="store_true", help="shoot the template dialog")
    parser.add_argument("--broken", action="store_true",
                        help="break the classifier, type a bad kernel, show the problems")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="cnnstudio-shot-")
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = os.path.join(scratch, "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = os.path.join(scratch, "data")

    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow
    from cnnstudio.ui.template_dialog import TemplateDialog

    app = application()
    if args.dark:
        app.setPalette(_dark_palette())
    if args.dialog:
        dialog = TemplateDialog()
        dialog.select(args.template)
        dialog.show()
        app.processEvents()
        ok = dialog.grab().save(args.out)
        dialog.close()
        dialog.deleteLater()
        app.processEvents()
        print(f"saved {args.out}" if ok else f"could not save {args.out}")
        return 0 if ok else 1
    window = MainWindow()
    window.new_project(args.template)
    window.resize(1280, 800)
    window.show()
    for _ in range(5):
        app.processEvents()
    if args.broken:
        graph = window.project.graph
        last = next(n.id for n in reversed(list(graph)) if n.type == "Linear")
        graph.set_param(last, "out_features", 3)
        window.undo_stack.resetClean()
    if args.select:
        window.show_node(args.select)
    for _ in range(5):
        app.processEvents()
    if args.broken and args.select:
        field = window.inspector.fields.get("kernel_size")
        if field is not None:
            field.editor.setText("0")
            field.editor.editingFinished.emit()
        window.problems_dock.raise_()
    for _ in range(5):
        app.processEvents()
    ok = window.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    window.confirm_unsaved = False
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
