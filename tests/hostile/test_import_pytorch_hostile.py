"""PyTorch import (`FILE.py:CLASS`) against files that are wrong, broken or hostile.

Every failure is one ModelImportError line (no traceback, no half-imported model), pickle
is never read, and the user's code cannot leave its marks on sys.path or stdout.
"""

from __future__ import annotations

import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cnnstudio.nn.importing.common import ModelImportError
from cnnstudio.nn.importing.torch_import import import_pytorch

torch.set_num_threads(1)

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"

SMALL = """
class Net(nn.Module):
    input_shape = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))
"""


def write(tmp_path: Path, body: str, name: str = "net.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def refused(spec: str, **options: object) -> str:
    """The one-line message of an import that must fail."""
    with pytest.raises(ModelImportError) as caught:
        import_pytorch(spec, **options)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def small_weights(tmp_path: Path, **changes: torch.Tensor | None) -> Path:
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4),
             "fc.weight": torch.randn(2, 144), "fc.bias": torch.randn(2)}
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    return path


@pytest.mark.parametrize("spec", ["model.pt", "model.pth:Net", "model.pt2", "scripted.pt:Net"])
def test_pickle_model_files_are_refused_unread(tmp_path: Path, spec: str,
                                               no_unpickling: list[str]) -> None:
    (tmp_path / spec.split(":")[0]).write_bytes(b"\x80\x04not really")
    message = refused(str(tmp_path / spec))
    assert "pickle-based file, which CNN Studio never reads" in message
    assert "export the model to ONNX, or give its class and a safetensors file" in message


def test_pickle_weights_are_refused_even_when_named_safetensors(
        tmp_path: Path, no_unpickling: list[str]) -> None:
    path = write(tmp_path, SMALL)
    net = tmp_path / "net.pth"
    net.write_bytes(b"\x80\x02}q\x00.")
    assert "net.pth is a pickle-based file" in refused(f"{path}:Net", weights=net)
    disguised = tmp_path / "disguised.safetensors"
    with zipfile.ZipFile(disguised, "w") as archive:  # what torch.save writes: a zip
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert "disguised.safetensors is a pickle-based file" in refused(f"{path}:Net",
                                                                     weights=disguised)


def test_malformed_specs(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    assert "FILE.py:CLASS" in refused(str(path))
    assert "no such file" in refused(f"{tmp_path / 'absent.py'}:Net")
    text = tmp_path / "net.txt"
    text.write_text("x")
    assert "not a Python file" in refused(f"{text}:Net")


def test_missing_class_names_the_ones_there_are(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    message = refused(f"{path}:Missing")
    assert message == "net.py has no class Missing (its nn.Module classes: Net)"


def test_not_a_module(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL + "\nclass Plain:\n    pass\n\ndef make():\n    return Net()\n")
    assert "Plain in net.py is not an nn.Module class" in refused(f"{path}:Plain")
    assert "make in net.py is not an nn.Module class" in refused(f"{path}:make")


def test_constructor_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            def __init__(self, classes):
                super().__init__()
                self.fc = nn.Linear(4, classes)
        """)
    assert refused(f"{path}:Net", input_shape=(4,)).endswith(
        "Net needs constructor arguments; give it defaults")


def test_missing_and_extra_weight_keys(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    missing = small_weights(tmp_path, fc__bias=None)
    assert "does not fit the model: missing fc.bias" in refused(f"{path}:Net", weights=missing)
    extra = small_weights(tmp_path, head__weight=torch.zeros(2), head__bias=torch.zeros(2))
    message = refused(f"{path}:Net", weights=extra)
    assert "unexpected head.bias, head.weight" in message or \
        "unexpected head.weight, head.bias" in message


def test_wrong_weight_shapes(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    wrong = small_weights(tmp_path, fc__weight=torch.zeros(3, 144))
    assert "fc.weight is 3×144 but the model has 2×144" in refused(f"{path}:Net", weights=wrong)


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    weights = small_weights(tmp_path)
    weights.write_bytes(weights.read_bytes()[:100])
    assert "is not a readable safetensors file" in refused(f"{path}:Net", weights=weights)


def test_control_flow_cannot_be_traced(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            input_shape = (4,)

            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                if x.sum() > 0:
                    return self.fc(x)
                return self.fc(-x)
        """)
    message = refused(f"{path}:Net")
    assert "torch.fx cannot trace Net.forward" in message
    assert "control flow" in message and "ONNX" in message


def test_unsupported_operations_are_listed_with_counts(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            input_shape = (5, 4)

            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(4, 4, batch_first=True)
                self.w = nn.Parameter(torch.ones(4, 4))

            def forward(self, x):
                out, _ = self.lstm(x)
                y = torch.matmul(out, self.w)
                return torch.matmul(y, self.w).permute(0, 2, 1)
        """)
    message = refused(f"{path}:Net")
    assert message.startswith("unsupported operations: ")
    assert "LSTM ×1" in message and "torch.matmul ×2" in message
    assert "Tensor.permute ×1" in message and "direct use of self.w ×1" in message
    assert "getitem" not in message  # unpacking the LSTM's result is not another problem


def test_shared_weights_and_inference_dropout(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            input_shape = (4,)

            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return F.dropout(self.fc(self.fc(x)), 0.5)
        """)
    message = refused(f"{path}:Net")
    assert "shared weights (fc used 2 times) ×1" in message
    assert "F.dropout that ignores eval mode (pass training=self.training) ×1" in message


def test_a_file_that_raises_on_import(tmp_path: Path) -> None:
    path = write(tmp_path, "raise ValueError('boom\\nsecond line')\n")
    assert refused(f"{path}:Net") == "running net.py raised ValueError: boom"
    broken = tmp_path / "broken.py"
    broken.write_text("class Net(nn.Module:\n    pass\n")
    assert "running broken.py raised SyntaxError" in refused(f"{broken}:Net")


def test_a_constructor_or_forward_that_raises(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                raise KeyError("no data")
        """)
    assert refused(f"{path}:Net", input_shape=(4,)).endswith("Net() raised KeyError: 'no data'")
    path = write(tmp_path, SMALL, name="small.py")
    message = refused(f"{path}:Net", input_shape=(1, 8, 8))  # the model wants 3 channels
    assert "Net.forward on a zero batch of 1×8×8 samples (is --input-shape right?) raised" \
        " RuntimeError" in message


def test_a_file_that_prints_and_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    path = write(tmp_path, "print('hello from the model file')\nimport sys\nsys.exit(3)\n")
    assert refused(f"{path}:Net").endswith("running net.py called exit(3)")
    captured = capsys.readouterr()
    assert captured.out == ""  # a --json reader sees only our output
    assert "hello from the model file" in captured.err
    path = write(tmp_path, "class Net:\n    def __init__(self):\n        exit()\n",
                 name="quits.py")
    with pytest.raises(ModelImportError):  # not a Module: refused before it is constructed
        import_pytorch(f"{path}:Net")


def test_an_exiting_constructor(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                raise SystemExit
        """)
    assert refused(f"{path}:Net", input_shape=(4,)).endswith("Net() called exit()")


def test_input_shape_is_required_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL.replace("input_shape = (3, 8, 8)", "pass"))
    assert "give the input shape with --input-shape C,H,W" in refused(f"{path}:Net")
    assert "is not a list of whole numbers" in refused(f"{path}:Net", input_shape="3,a,8")
    assert "input shape" in refused(f"{path}:Net", input_shape=(3, 0, 8))


def test_forward_must_return_one_tensor(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Net(nn.Module):
            input_shape = (4,)

            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x), x
        """)
    assert "forward returns tuple, not one tensor" in refused(f"{path}:Net")


def test_failures_leave_sys_path_as_it_was(tmp_path: Path) -> None:
    before = list(sys.path)
    path = write(tmp_path, "raise RuntimeError('x')\n")
    refused(f"{path}:Net")
    assert sys.path == before


def test_size_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SMALL)
    assert "is too large to check" in refused(f"{path}:Net", input_shape=(3, 8192, 8192))
    from cnnstudio.nn.importing import torch_import

    monkeypatch.setattr(torch_import, "MAX_GRAPH_NODES", 4)
    assert "Net has more than 4 operations" in refused(f"{path}:Net")
