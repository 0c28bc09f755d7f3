"""Screenshot of the Data view for a human to look at (not collected as a test).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/ui/screenshot_data_view.py \
        /tmp/data.png [--template digits-lenet] [--builtin NAME] [--folder] [--error] [--dark]
        [--dock-only] [--skipped] [--loading]

Opens the window at 1280×800, raises the Data dock, loads the data (the template's, a
built-in by NAME, a generated image folder with a few bad files, or an empty folder for
the error message; --loading shoots while a big folder decodes) and saves `window.grab()` (or only the dock's). Settings, recovery
files and the dataset cache go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _folder(root: Path, per_class: int = 0) -> Path:
    """A class-per-subfolder image set with a corrupt PNG and a stray text file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, value in (("cats", 60), ("dogs", 140), ("owls", 220)):
        sub = root / label
        sub.mkdir(parents=True)
        for i in range(per_class or 12 + value // 20):
            pixels = rng.integers(0, 80, (24, 24, 3), dtype=np.uint8)
            pixels[6:18, 6:18] = (value, 255 - value, (value * 3) % 256)
            Image.fromarray(pixels).save(sub / f"{label}_{i:03}.png")
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "owls" / "empty.jpg").write_bytes(b"")
    return root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--template", default="digits-lenet")
    parser.add_argument("--builtin", default=None)
    parser.add_argument("--folder", action="store_true")
    parser.add_argument("--error", action="store_true")
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--dock-only", action="store_true")
    parser.add_argument("--skipped", action="store_true", help="show the Skipped tab")
    parser.add_argument("--loading", action="store_true",
                        help="shoot mid-load (a folder of 3,000 generated images)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cnnstudio-shot-"))
    os.environ["CNNSTUDIO_SETTINGS_DIR"] = str(scratch / "settings")
    os.environ["CNNSTUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["CNNSTUDIO_CACHE_DIR"] = str(scratch / "cache")

    from cnnstudio.ui.app import application
    from cnnstudio.ui.main_window import MainWindow

    app = application()
    if args.dark:
        sys.path.insert(0, str(Path(__file__).parent))
        from screenshot_window import _dark_palette

        app.setPalette(_dark_palette())
    window = MainWindow()
    window.new_project(args.template)
    window.resize(1280, 800)
    window.show()
    window.data_dock.raise_()
    view = window.data_view
    if args.builtin:
        view.form.builtin.setCurrentIndex(view.form.builtin.findData(args.builtin))
        view.form.builtin.activated.emit(view.form.builtin.currentIndex())
    if args.folder or args.error or args.loading:
        root = scratch / "images"
        if args.folder or args.loading:
            _folder(root, 1000 if args.loading else 0)
        else:
            (root / "only_text").mkdir(parents=True)
            (root / "only_text" / "readme.txt").write_text("no pictures here")
        view.form.ask_directory = lambda *_a: str(root)
        view.form.kind.setCurrentIndex(view.form.kind.findData("folder"))
        view.form.kind.activated.emit(view.form.kind.currentIndex())
        view.form.paths[0].browse.click()
        if args.folder:
            view.form.val_fraction.setText("0.25")
            view.form.val_fraction.editingFinished.emit()
            view.form.rotation.setText("400")
            view.form.rotation.editingFinished.emit()
            view.tabs.setCurrentIndex(1 if args.skipped else 0)
    view.reload()
    deadline = time.monotonic() + 60
    while view.is_loading() and time.monotonic() < deadline:
        if args.loading and "Decoding" in view.progress.format() and view.progress.value() > 0:
            break
        app.processEvents()
        time.sleep(0.01)
    for _ in range(10):
        app.processEvents()
    target = window.data_dock if args.dock_only else window
    ok = target.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    print("message:", view.message_text() or "-", "| error:", view.form.error_text() or "-")
    window.confirm_unsaved = False
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
