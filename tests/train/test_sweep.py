"""Sweeps through the API: planning, recording, ranking, stopping and resuming."""

from __future__ import annotations

import itertools
import random

import pytest

from cnnstudio.core.templates import get_template
from cnnstudio.project import project_from_dict
from cnnstudio.train.sweep import (
    Sweep,
    SweepAxis,
    SweepError,
    apply_settings,
    combinations,
    parse_set,
    plan_sweep,
    ranking,
    sweep_id,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def project():
    made = project_from_dict(get_template("digits-lenet").project_dict("digits"))
    made.training.update({"epochs": 1, "max_batches_per_epoch": 2, "device": "cpu"})
    return made


def test_values_are_json_scalars_or_text():
    axis = parse_set("training.optimizer.lr=0.001, 1e-2 ,3")
    assert axis == SweepAxis("training.optimizer.lr", (0.001, 0.01, 3))
    assert parse_set("training.optimizer.name=SGD,Adam").values == ("SGD", "Adam")
    assert parse_set("training.amp=true,false").values == (True, False)
    assert parse_set('data.source.name="digits"').values == ("digits",)


@pytest.mark.parametrize("text", ["lr=0.1", "training.lr", "training.lr=", "training..x=1",
                                  "training.lr=1,,2", "training.lr=1,1", "=1"])
def test_malformed_sets_are_one_line_errors(text):
    with pytest.raises(SweepError) as caught:
        parse_set(text)
    assert "\n" not in str(caught.value)


def test_the_grid_is_the_cartesian_product_in_order():
    axes = [SweepAxis("training.a", (1, 2, 3)), SweepAxis("training.b", ("x", "y"))]
    expected = [{"training.a": a, "training.b": b}
                for a, b in itertools.product((1, 2, 3), ("x", "y"))]
    assert combinations(axes, None, seed=0) == expected


def test_random_trials_are_seeded_distinct_draws_from_the_grid():
    axes = [SweepAxis("training.a", tuple(range(7))), SweepAxis("training.b", tuple(range(5)))]
    grid = [{"training.a": a, "training.b": b} for a, b in itertools.product(range(7), range(5))]
    drawn = combinations(axes, 6, seed=4)
    assert drawn == combinations(axes, 6, seed=4)  # the same seed, the same draws
    assert drawn == [grid[i] for i in random.Random(4).sample(range(35), 6)]
    assert len({tuple(d.values()) for d in drawn}) == 6
    assert drawn != combinations(axes, 6, seed=5)
    assert sorted(map(str, combinations(axes, 100, seed=0))) == sorted(map(str, grid))
    with pytest.raises(SweepError):
        combinations(axes, 0, seed=0)


def test_the_id_follows_the_grid_and_the_count():
    axes = [SweepAxis("training.a", (1, 2))]
    assert sweep_id(axes, None, 0, None) == sweep_id(list(axes), None, 0, None)
    others = {sweep_id([SweepAxis("training.a", (1, 3))], None, 0, None),
              sweep_id(axes, 2, 0, None), sweep_id(axes, None, 1, None),
              sweep_id(axes, None, 0, 3)}
    assert sweep_id(axes, None, 0, None) not in others and len(others) == 4


def test_settings_apply_to_a_copy_and_unknown_keys_are_refused(project):
    trial = apply_settings(project, {"training.optimizer.name": "SGD",
                                     "training.optimizer.momentum": 0.5})
    assert trial.training["optimizer"]["momentum"] == 0.5
    assert "momentum" not in project.training.get("optimizer", {})
    for bad in ({"training.optimizer.momentum": 0.5}, {"training.bogus": 1},
                {"training.optimizer.lr": -1}, {"data.val_fraction": 2}):
        with pytest.raises(SweepError) as caught:
            apply_settings(project, bad)
        assert "\n" not in str(caught.value)


def test_a_sweep_records_its_runs_and_ranks_them_by_the_recorded_metric(project):
    axes = [parse_set("training.optimizer.lr=0.001,0.05"), parse_set("training.batch_size=16,32")]
    plan = plan_sweep(project, axes)
    before = project.training.copy()
    outcomes = Sweep(project, plan).run()
    assert [o.status for o in outcomes] == ["completed"] * 4
    assert project.training == before  # the project's own settings are unchanged
    assert [r["id"] for r in project.runs] == ["run-1", "run-2", "run-3", "run-4"]
    for index, run in enumerate(project.runs):
        assert run["sweep"] == {"id": plan.id, "trial": index, "settings": plan.trials[index]}
        # The run trained with its trial's settings, as its record says.
        assert run["settings"]["optimizer"]["lr"] == plan.trials[index]["training.optimizer.lr"]
        assert run["settings"]["batch_size"] == plan.trials[index]["training.batch_size"]
    rows = ranking(project, plan.id)
    by_record = sorted(project.runs, key=lambda r: (-r["best"]["val_accuracy"],
                                                    r["best"]["val_loss"]))
    assert [row["run"] for row in rows] == [r["id"] for r in by_record]
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["value"] == by_record[0]["best"]["val_accuracy"]


def test_a_stopped_sweep_resumes_with_the_trials_not_yet_recorded(project):
    axes = [parse_set("training.optimizer.lr=0.001,0.002,0.003")]
    plan = plan_sweep(project, axes)
    sweep = Sweep(project, plan)
    started: list[int] = []

    def on_start(index, settings):
        started.append(index)
        if index == 1:
            sweep.stop()  # as the window's Stop would, while the trial starts

    outcomes = sweep.run(on_trial_start=on_start)
    assert [o.status for o in outcomes] == ["completed", "stopped"]
    assert started == [0, 1] and len(project.runs) == 1  # the stopped trial is not recorded
    again = plan_sweep(project, axes)
    assert again.id == plan.id and set(again.done) == {0}
    resumed = Sweep(project, again).run()
    assert [(o.trial, o.skipped) for o in resumed] == [(0, True), (1, False), (2, False)]
    assert [r["sweep"]["trial"] for r in project.runs] == [0, 1, 2]
    assert set(plan_sweep(project, axes).done) == {0, 1, 2}
    assert Sweep(project, plan_sweep(project, axes)).run()[-1].skipped
    assert len(project.runs) == 3  # nothing trained again


def test_a_key_given_twice_or_no_keys_is_refused(project):
    with pytest.raises(SweepError, match="twice"):
        plan_sweep(project, [parse_set("training.seed=1"), parse_set("training.seed=2")])
    with pytest.raises(SweepError):
        plan_sweep(project, [])


def test_a_trial_that_fails_before_training_records_nothing(project, monkeypatch):
    # train_project returns "failed" without a run record when, e.g., the data cannot be
    # loaded: the sweep must neither re-tag nor duplicate the project's previous run.
    import cnnstudio.train.api as api
    from cnnstudio.train.record import FAILED, RunResult

    project.runs.append({"id": "run-1", "status": "completed"})
    monkeypatch.setattr(api, "train_project",
                        lambda trial, **kw: RunResult(FAILED, "the data folder is missing"))
    plan = plan_sweep(project, [parse_set("training.optimizer.lr=0.001,0.01")])
    outcomes = Sweep(project, plan).run()
    assert [(o.status, o.run) for o in outcomes] == [(FAILED, None), (FAILED, None)]
    assert project.runs == [{"id": "run-1", "status": "completed"}]
    assert plan.done == {}
