"""``polytask classic CONFIG``: a user's table of per-task rows (generated here, so the
test runs everywhere) fitted by a classic estimator from YAML, with clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from polytask.cli.main import main


def write_shops(folder: Path, seed: int = 0) -> Path:
    """Six shops (tasks) with related linear sales models and a binary 'busy' label."""
    g = np.random.default_rng(seed)
    base = np.array([2.0, -1.0, 0.5])
    lines = ["shop,x1,x2,x3,sales,busy"]
    for shop in "abcdef":
        w = base + 0.2 * g.normal(size=3)
        for _ in range(60):
            x = g.normal(size=3)
            sales = 100 + 10 * (x @ w) + g.normal()
            lines.append(f"{shop},{x[0]:.5f},{x[1]:.5f},{x[2]:.5f},{sales:.4f},{int(x @ w > 0)}")
    (folder / "shops.csv").write_text("\n".join(lines) + "\n")
    return folder / "shops.csv"


def config(folder: Path, target: str, loss: str, extra: str = "") -> Path:
    write_shops(folder)
    text = f"""
dataset:
  name: table
  options:
    source: shops.csv
    task_column: shop
    inputs: [x1, x2, x3]
    tasks: {{{target}: {{loss: {loss}}}}}
    fractions: [0.6, 0.2, 0.2]
method: {{name: mean_regularized}}
search: {{values: [10, 1, 0.1, 0.01, 0.001], cv: 3}}
output: {folder}/run-{{method}}
{extra}"""
    path = folder / "shops.yaml"
    path.write_text(text)
    return path


def test_classic_command_fits_regression_per_task_and_writes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, "sales", "mse")
    assert main(["classic", str(path)]) == 0
    out = capsys.readouterr().out
    assert "MeanRegularizedMTL with alpha=" in out and "explained_variance" in out
    results = json.loads((tmp_path / "run-mean_regularized" / "results.json").read_text())
    # Noise variance 1 against sales' spread ~ 10^2 * 5: nearly all variance explained.
    assert results["metrics"]["test"]["explained_variance"] > 0.98
    assert results["chosen"]["alpha"] in (10, 1, 0.1, 0.01, 0.001)
    model = np.load(tmp_path / "run-mean_regularized" / "model.npz")
    assert model["coef"].shape == (6, 3) and len(model["tasks"]) == 6
    # A change of method is a new run folder with that method's results.
    assert main(["classic", str(path), "method.name=robust", "search=null"]) == 0
    robust = json.loads((tmp_path / "run-robust" / "results.json").read_text())
    assert robust["estimator"].startswith("RobustMTL(")


def test_classic_command_fits_binary_tasks_with_the_logistic_twin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, "busy", "bce")
    assert main(["classic", str(path), "method.name=joint_feature_selection"]) == 0
    out = capsys.readouterr().out
    assert "JointFeatureSelectionMTLClassifier" in out and "roc_auc" in out
    results = json.loads((tmp_path / "run-joint_feature_selection" / "results.json").read_text())
    assert results["metrics"]["test"]["accuracy"] > 0.85  # separable up to label rounding


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.name=trace_nrom"], "Did you mean 'trace_norm'"),
        (["method.options.alpa=1", "search=null"], "has no option 'alpa'; its options are alpha"),
        (["dataset.options.task_column=null"], "the classic estimators need per-task data"),
    ],
)
def test_classic_command_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: list[str], message: str
) -> None:
    path = config(tmp_path, "sales", "mse", extra="")
    if "task_column=null" in overrides[0]:  # two targets on every row: not per-task data
        path.write_text(path.read_text().replace("{sales: {loss: mse}}",
                                                 "{sales: {loss: mse}, x3: {loss: mse}}")
                        .replace("inputs: [x1, x2, x3]", "inputs: [x1, x2]"))  # fmt: skip
    assert main(["classic", str(path), *overrides]) == 2
    assert message in capsys.readouterr().err


def test_the_docs_configuration_runs(tmp_path: Path) -> None:
    """docs/classic.md's table configuration, verbatim, beside a generated shops.csv."""
    import re

    page = (Path(__file__).parents[1] / "docs" / "classic.md").read_text()
    (text,) = [b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "dataset:" in b]
    write_shops(tmp_path)
    (tmp_path / "shops.yaml").write_text(text)
    assert main(["classic", str(tmp_path / "shops.yaml"), f"output={tmp_path}/run"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["metrics"]["test"]["explained_variance"] > 0.98


def test_list_classic_names_every_method_with_its_classes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from polytask.classic import METHODS

    assert main(["list", "classic"]) == 0
    out = capsys.readouterr().out
    for name, method in METHODS.items():
        assert name in out and method.regressor in out and method.classifier in out
    assert main(["list", "classic", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listed] == list(METHODS)
