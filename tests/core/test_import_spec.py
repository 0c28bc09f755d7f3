"""What an import is given, read without torch: `FILE.py:CLASS`, the input shape, and the
nn.Module classes of a source file (parsed, never run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnstudio.core.import_spec import parse_input_shape, split_model_spec
from cnnstudio.core.pyclasses import module_classes, module_classes_in_file


@pytest.mark.parametrize(("text", "shape"), [
    ("3,32,32", (3, 32, 32)), (" 3, 32, 32 ", (3, 32, 32)), ("1x128", (1, 128)),
    ("(3, 224, 224)", (3, 224, 224)), ("10", (10,)), ("", None), ("  ", None),
    (None, None), ([3, 8, 8], (3, 8, 8)), ("1,4,8,8", (1, 4, 8, 8)),
])
def test_input_shapes_are_read(text, shape) -> None:
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["3,a,32", "1,x", "3x", "0,32,32", "-1,4", "1,2,3,4,5", "3.5,2",
                                  [3, True], [3, 2.0]])
def test_bad_input_shapes_are_one_line(text) -> None:
    with pytest.raises(ValueError) as caught:
        parse_input_shape(text)
    assert "\n" not in str(caught.value) and "e.g. 3,32,32" in str(caught.value)


@pytest.mark.parametrize(("spec", "path", "cls"), [
    ("net.py:Net", "net.py", "Net"), ("dir/net.py:Net", "dir/net.py", "Net"),
    (r"C:\models\net.py:Net", r"C:\models\net.py", "Net"), ("net.py", "net.py", None),
    ("net.py:", "net.py", ""), ("model.onnx", "model.onnx", None),
    ("C:model.onnx", "C:model.onnx", None),
])
def test_model_specs_split_at_the_last_colon_after_py(spec, path, cls) -> None:
    assert split_model_spec(spec) == (Path(path), cls)


SOURCE = '''
import torch.nn as nn
from lightning import LightningModule

class Helper:
    pass

class Late(Base):          # derives from a module class defined further down
    pass

class Base(nn.Module):
    pass

class Lit(LightningModule):
    pass

class Typed(nn.Module, Helper):
    pass

def make():
    class Inner(nn.Module):  # not at the top level: cannot be named FILE.py:Inner
        pass
'''


def test_module_classes_are_listed_in_file_order() -> None:
    assert module_classes(SOURCE) == ["Late", "Base", "Lit", "Typed"]


def test_listing_never_runs_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "net.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + SOURCE)
    assert module_classes_in_file(path) == ["Late", "Base", "Lit", "Typed"]
    assert not marker.exists()


def test_invalid_python_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("class A(nn.Module):\n    def f(:\n")
    with pytest.raises(ValueError, match=r"broken.py is not valid Python \(line 2\)"):
        module_classes_in_file(path)
    with pytest.raises(ValueError, match="cannot read"):
        module_classes_in_file(tmp_path / "missing.py")
