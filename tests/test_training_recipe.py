"""``--recipe mobileclip2``: Apple's v2 values as defaults, printed at start, each overridable."""

import math

import pytest
from mobileclip_fastload_train.experiments.mobileclip2_recipe_toy import run
from mobileclip_fastload_train.recipes import RECIPES
from mobileclip_fastload_train.train import _parse

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = ["--fake-data", "8", "--output", "unused"]


def test_the_recipe_sets_apples_v2_values_and_every_flag_overrides_it(capsys):
    args = vars(_parse([*BASE, "--recipe", "mobileclip2"]))
    assert {k: args[k] for k in RECIPES["mobileclip2"]} == {
        "lam": 1.0,
        "teacher_logit_scale": [70.0, 60.0],
        "loss_captions": "both",
        "lr": 1e-3,
        "beta2": 0.95,
        "wd": 0.2,
        "warmup": 1000,
        "grad_clip": 1.0,
        "precision": "bf16",
    }
    assert "recipe mobileclip2: lam=1.0, teacher_logit_scale=[70.0, 60.0]" in capsys.readouterr().out
    overridden = vars(
        _parse(
            [*BASE, "--recipe", "mobileclip2", "--teacher-logit-scale", "100", "--lr", "5e-4", "--precision", "fp32"]
        )
    )
    assert (overridden["teacher_logit_scale"], overridden["lr"], overridden["precision"]) == ([100.0], 5e-4, "fp32")
    assert overridden["wd"] == 0.2
    printed = capsys.readouterr().out
    assert "lr=0.0005 (recipe: 0.001)" in printed and "precision='fp32' (recipe: 'bf16')" in printed
    # No recipe: the loop's own defaults (DataCompDR's alpha = 100), nothing printed.
    assert vars(_parse(BASE))["teacher_logit_scale"] == [100.0] and capsys.readouterr().out == ""


def test_toy_run_with_the_mobileclip2_recipe_on_a_dr_store(tmp_path):
    summary = run(tmp_path, steps=3, extra=("--lr", "2e-3"))
    assert summary["printed"].startswith("recipe mobileclip2: lam=1.0, teacher_logit_scale=[70.0, 60.0]")
    config = summary["config"]
    assert tuple(config["teacher_logit_scale"]) == (70.0, 60.0) and config["num_teachers"] == 2
    assert (config["lam"], config["beta2"], config["weight_decay"], config["grad_clip"], config["precision"]) == (
        1.0,
        0.95,
        0.2,
        1.0,
        "bf16",
    )
    assert config["lr"] == 2e-3  # the flag given wins
    assert [r["step"] for r in summary["metrics"]] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["clip_loss"] >= 0 for r in summary["metrics"])
    assert (tmp_path / "summary.json").exists()
