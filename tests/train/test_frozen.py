"""Fine-tuning with frozen layers: frozen weights and BatchNorm statistics stay bit-identical
while the head learns, the optimizer holds only trainable parameters, a plain PyTorch loop
with the same frozen set gives the same weights, and runs record where they started."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_tensors

from cnnstudio.core.templates import get_template
from cnnstudio.nn import build_module, weights_to_bytes
from cnnstudio.project import project_from_dict
from cnnstudio.project.origin import describe_init, starting_point
from cnnstudio.train import Callback, Trainer, train_project
from cnnstudio.train.batches import epoch_permutation
from cnnstudio.train.freezing import freeze_nodes

from .helpers import build, cpu_copy, make_dataset, settings, small_graph, state_equal

BACKBONE = ("conv1", "bn1")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


def frozen_model(seed: int = 0):
    graph = small_graph(batch_norm=True)
    graph.set_trainable(BACKBONE, False)
    module = build(graph, seed)
    assert freeze_nodes(module, graph) == list(BACKBONE)
    return module


def backbone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.split(".")[0] in BACKBONE}


def test_a_frozen_backbone_and_its_batchnorm_statistics_stay_bit_identical() -> None:
    module = frozen_model()
    before = cpu_copy(module)
    training = settings(epochs=3, optimizer={"name": "SGD", "lr": 0.05, "momentum": 0.9,
                                             "weight_decay": 0.01})
    result = Trainer(module, make_dataset(n=70, val=10), training).fit()
    assert result.status == "completed", result.message
    after = cpu_copy(module)
    assert {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"} <= set(after)
    assert state_equal(backbone(after), backbone(before))  # weights and running stats
    assert int(after["bn1.num_batches_tracked"]) == 0
    assert not torch.equal(after["fc.weight"], before["fc.weight"])  # the head learned
    assert not module.conv1.weight.requires_grad and module.fc.weight.requires_grad


def test_without_freezing_the_same_model_changes_its_backbone() -> None:
    """The control: the bit-identical backbone above comes from freezing, not from a
    learning rate too small to move it."""
    module = build(small_graph(batch_norm=True), 0)
    before = cpu_copy(module)
    Trainer(module, make_dataset(n=70, val=10), settings(epochs=3)).fit()
    after = backbone(cpu_copy(module))
    del after["conv1.bias"]  # BatchNorm right after cancels a bias: its gradient is zero
    assert not any(torch.equal(after[k], backbone(before)[k]) for k in after)


def test_the_optimizer_holds_only_trainable_parameters() -> None:
    seen = []

    class Peek(Callback):
        def on_fit_start(self, trainer) -> None:
            seen.extend(p for group in trainer.optimizer.param_groups for p in group["params"])

    module = frozen_model()
    Trainer(module, make_dataset(), settings(epochs=1), callbacks=[Peek()]).fit()
    assert {id(p) for p in seen} == {id(p) for p in module.fc.parameters()}


def plain_loop(module: torch.nn.Module, dataset, *, epochs: int, batch_size: int, seed: int,
               lr: float, momentum: float) -> None:
    """Fine-tuning as one writes it by hand: frozen parameters out of the optimizer, and
    the frozen BatchNorm put back in eval mode after every `train()`."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=lr,
                          momentum=momentum)
    train = dataset.splits["train"]
    for epoch in range(epochs):
        module.train()
        module.bn1.eval()
        order = train[epoch_permutation(seed, epoch, len(train))]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(module(dataset.batch_to_float(dataset.x[idx])),
                                   dataset.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_the_trainer_equals_a_plain_fine_tuning_loop_bit_for_bit() -> None:
    dataset = make_dataset(n=70, val=10)
    module = frozen_model()
    reference = copy.deepcopy(build(small_graph(batch_norm=True), 0))
    reference.conv1.requires_grad_(False)  # frozen by hand, as a PyTorch user does
    reference.bn1.requires_grad_(False)
    assert state_equal(cpu_copy(module), cpu_copy(reference))
    assert Trainer(module, dataset, settings(epochs=2)).fit().status == "completed"
    plain_loop(reference, dataset, epochs=2, batch_size=16, seed=3, lr=0.05, momentum=0.9)
    assert state_equal(cpu_copy(module), cpu_copy(reference))


def test_a_network_frozen_everywhere_fails_with_one_line() -> None:
    graph = small_graph()
    graph.set_trainable(graph.ids, False)
    module = build(graph)
    freeze_nodes(module, graph)
    result = Trainer(module, make_dataset(), settings(epochs=1)).fit()
    assert result.status == "failed"
    assert result.message == ("every layer with parameters is frozen: there is nothing to"
                              " train (unfreeze some layers)")


# ---- whole projects: fresh starts, imported weights, resume --------------------------------


def digits_project(frozen=("conv1", "conv2"), **extra):
    doc = get_template("digits-lenet").project_dict()
    doc["training"] = {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 3,
                       "device": "cpu", "optimizer": {"name": "Adam", "lr": 0.01}}
    doc.update(extra)
    project = project_from_dict(doc)
    project.graph.set_trainable(frozen, False)
    return project


def tensors(weights: bytes, prefixes) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_tensors(weights).items() if k.split(".")[0] in prefixes}


def test_fresh_starts_from_new_weights_and_still_freezes() -> None:
    project = digits_project()
    assert train_project(project).status == "completed"
    first = project.weights
    assert train_project(project).status == "completed"  # warm: frozen layers unchanged
    assert state_equal(tensors(project.weights, ("conv1", "conv2")),
                       tensors(first, ("conv1", "conv2")))
    assert not state_equal(tensors(project.weights, ("classifier",)),
                           tensors(first, ("classifier",)))
    assert train_project(project, fresh=True).status == "completed"
    assert project.runs[-1]["init"] == "fresh"
    # Frozen layers keep the seeded initial weights through the whole fresh run.
    torch.manual_seed(project.training_settings()["seed"])
    initial = build_module(project.graph).state_dict()
    kept = tensors(project.weights, ("conv1", "conv2"))
    assert kept and all(torch.equal(kept[k], initial[k]) for k in kept)


def test_the_first_run_after_an_import_records_the_imported_weights() -> None:
    imported = {"from": "resnet_tiny.onnx", "kind": "onnx"}
    project = digits_project(imported=imported)
    torch.manual_seed(123)  # weights of a model that came from elsewhere
    start = weights_to_bytes(build_module(project.graph))
    project.weights = start
    init = starting_point(project)
    assert init == {"from_run": None, "imported": "resnet_tiny.onnx"}
    assert describe_init(init) == "the imported weights (resnet_tiny.onnx)"
    assert train_project(project).status == "completed"
    assert project.runs[0]["init"] == init
    assert state_equal(tensors(project.weights, ("conv1", "conv2")),
                       tensors(start, ("conv1", "conv2")))  # fine-tuned on the import's body
    assert train_project(project).status == "completed"
    assert project.runs[1]["init"] == {"from_run": "run-1"}
    plain = digits_project()
    plain.weights = start
    assert starting_point(plain) == {"from_run": None}  # not imported: origin unknown


class StopAfter(Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_batch_end(self, trainer, info) -> None:
        if info.batch == self.batch:
            trainer.request_stop()


def test_a_resume_keeps_the_frozen_set_and_refuses_a_changed_one() -> None:
    project = digits_project()
    project.training["max_batches_per_epoch"] = 4
    assert train_project(project, callbacks=[StopAfter(2)]).status == "stopped"
    resumable = copy.deepcopy(project.runs), dict(project.attachments), project.weights
    result = train_project(project)
    assert result.status == "completed" and len(project.runs) == 1  # resumed, same record
    assert state_equal(tensors(project.weights, ("conv1",)), tensors(resumable[2], ("conv1",)))

    project.runs, project.attachments, project.weights = resumable
    project.graph.set_trainable(["conv2"], True)
    result = train_project(project)
    assert result.status == "completed"
    assert "the frozen layers changed" in result.message and len(project.runs) == 2


def test_a_replaced_head_starts_new_while_the_body_keeps_the_imported_weights() -> None:
    """Import, then the class-count fix gives the head another size: the first run keeps
    every layer that still fits (frozen ones bit for bit), and says which start anew."""
    project = digits_project(imported={"from": "net.onnx", "kind": "onnx"})
    project.graph.set_param("classifier", "out_features", 4)  # the imported model's head
    torch.manual_seed(7)
    start = weights_to_bytes(build_module(project.graph))
    project.weights = start
    project.graph.set_param("classifier", "out_features", 10)  # the class-count fix
    result = train_project(project)
    assert result.status == "completed", result.message
    assert "at classifier (changed since)" in result.message
    assert project.runs[0]["init"] == {"from_run": None, "imported": "net.onnx"}
    after = load_tensors(project.weights)
    assert after["classifier.weight"].shape == (10, 64)
    assert state_equal(tensors(project.weights, ("conv1", "conv2")),
                       tensors(start, ("conv1", "conv2")))


class _Backbone(torch.nn.Module):
    """A pretrained model as someone brings it: conv → BatchNorm → ReLU → pool → linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.head(torch.flatten(x, 1))


def test_an_imported_onnx_model_fine_tunes_with_its_backbone_bit_identical(tmp_path) -> None:
    pytest.importorskip("onnx")
    import warnings

    from cnnstudio.nn import load_weights
    from cnnstudio.nn.importing import import_model, imported_project

    torch.manual_seed(0)
    original = _Backbone()
    with torch.no_grad():  # statistics as a trained model has them
        original.bn.running_mean.uniform_(-1, 1)
        original.bn.running_var.uniform_(0.5, 2)
    original.eval()
    path = tmp_path / "backbone.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(original, (torch.randn(2, 1, 8, 8),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)
    project = imported_project(import_model(str(path)))
    load_weights(build_module(project.graph), project.weights)  # strict: every key fits
    kinds = {n.type: n.id for n in project.graph}
    body = [kinds["Conv2d"], kinds["BatchNorm2d"]]
    project.graph.set_trainable(body, False)
    project.data = {"source": {"kind": "builtin", "name": "digits"}}
    project.training = {"epochs": 2, "batch_size": 32, "max_batches_per_epoch": 3,
                        "device": "cpu", "optimizer": {"name": "Adam", "lr": 0.01}}
    result = train_project(project)
    assert result.status == "completed", result.message
    assert project.runs[0]["init"] == {"from_run": None, "imported": "backbone.onnx"}
    after = load_tensors(project.weights)
    theirs = original.state_dict()
    for ours, name in ((body[0], "conv"), (body[1], "bn")):
        for key, value in theirs.items():
            if key.startswith(name + "."):
                mine = after[f"{ours}.{key.split('.', 1)[1]}"]
                assert torch.equal(mine, value), key
    head = kinds["Linear"]
    assert not torch.equal(after[f"{head}.weight"], theirs["head.weight"])  # it learned
