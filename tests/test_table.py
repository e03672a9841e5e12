"""The ``table`` dataset: a user's CSV, Parquet file or DataFrame as a multi-task dataset,
with target scaling fitted on training rows and clear errors for bad tables."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import polytask.data as pd
from polytask.data.splits import per_task_splits
from polytask.data.table_source import TableError

from .conftest import DATA_ROOT, have_data


def houses(rows: int = 300, seed: int = 0) -> dict[str, list[Any]]:
    """A generated table: two numeric inputs and a city, a price in currency units (~1e5),
    a rate in small units (~1e-3), a 0/1 label and a 3-class column; some labels missing."""
    g = np.random.default_rng(seed)
    area, age = g.normal(100, 30, rows), g.uniform(0, 50, rows)
    city = g.choice(["north", "south", "west"], rows)
    bonus = np.select([city == "north", city == "south"], [2.0, -1.0], 0.0)
    z1 = (area - 100) / 30 - (age - 25) / 15 + bonus + 0.1 * g.normal(size=rows)
    z2 = (age - 25) / 15 + 0.5 * bonus + 0.1 * g.normal(size=rows)
    price = 250_000 + 80_000 * z1
    rate = 0.004 + 0.001 * z2
    sold = (z1 + 0.3 * g.normal(size=rows) > 0).astype(int)
    kind = np.where(z2 > 0.5, "big", np.where(z2 < -0.5, "small", "mid"))
    table: dict[str, list[Any]] = {
        "area": area.tolist(),
        "age": age.tolist(),
        "city": city.tolist(),
        "price": price.tolist(),
        "rate": rate.tolist(),
        "sold": sold.tolist(),
        "kind": kind.tolist(),
    }
    for column, every in (("price", 7), ("sold", 11)):
        for i in range(3, rows, every):
            table[column][i] = ""
    return table


def write_csv(path: Path, table: dict[str, list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(table))
        writer.writerows(zip(*table.values(), strict=True))
    return path


TASKS = {"price": "mse", "rate": {"loss": "mse"}, "sold": {"loss": "bce"}}
INPUTS = ["area", "age", "city"]


@pytest.fixture
def houses_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "houses.csv", houses())


def test_targets_kept_raw_and_scale_fitted_on_training_rows(houses_csv: Path) -> None:
    data = pd.load("table", source=houses_csv, tasks=TASKS)
    assert isinstance(data, pd.DataSplits)
    assert [t.name for t in data.tasks] == ["price", "rate", "sold"]
    raw = np.array([math.nan if v == "" else v for v in houses()["price"]], dtype=float)
    train_price = data.train.targets["price"].double().numpy()
    labelled = train_price[~np.isnan(train_price)]
    assert data.tasks[0].target_scale == pytest.approx((labelled.mean(), labelled.std()))
    # Targets stay in their own units; missing cells are NaN (missing labels).
    present = raw[~np.isnan(raw)]
    assert np.isclose(labelled[:, None], present[None, :], rtol=1e-6).any(axis=1).all()
    assert torch.isnan(data.train.targets["price"]).any()
    assert data.tasks[2].target_scale is None and data.tasks[2].kind == "binary"
    # Inputs: city and kind one-hot (3 training values + an unseen slot each), then the 2
    # numeric columns standardised.
    assert data.metadata["inputs"] == {"categorical": ["city", "kind"], "numeric": ["area", "age"]}
    assert data.input_shape == (4 + 4 + 2,)
    numeric = data.train.inputs[:, -2:]
    assert (
        numeric.mean(0).abs().max() < 1e-5
        and (numeric.std(0, unbiased=False) - 1).abs().max() < 1e-4
    )
    assert sum(data.metadata["sizes"].values()) == 300


def make_trainer(model: Any, data: pd.DataSplits, config: Any) -> Any:
    from polytask.balancers import create as balancer
    from polytask.tasks import TaskSet
    from polytask.training import Trainer

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Trainer(model, TaskSet(data.tasks), balancer("equal"), optimizer, config=config)


def fit_mse(data: pd.DataSplits, steps: int = 600) -> dict[str, float]:
    """Test MSE per regression task, in the table's units, after a fixed small training."""
    from polytask.models import create
    from polytask.training import TrainerConfig

    torch.manual_seed(0)
    model = create("shared_bottom", input_dim=data.input_shape[0], trunk_dims=[32], head_dims=[16],
                   heads={t.name: 1 for t in data.tasks})  # fmt: skip
    config = TrainerConfig(max_steps=steps, epochs=1000, batch_size=32, progress=False, seed=0)
    trainer = make_trainer(model, data, config)
    trainer.fit(data.train, data.val)
    test = trainer.evaluate(data.test)["metrics"]
    return {t.name: test[t.name]["mse"] for t in data.tasks if t.kind == "regression"}


def test_wild_units_train_like_prescaled_units_and_report_in_their_own(tmp_path: Path) -> None:
    table = houses()
    wild = write_csv(tmp_path / "wild.csv", table)
    pre = dict(table)
    pre["price"] = [v if v == "" else v / 1e5 for v in table["price"]]
    pre["rate"] = [v * 1e3 for v in table["rate"]]
    prescaled = write_csv(tmp_path / "pre.csv", pre)
    tasks = {"price": "mse", "rate": "mse"}
    a = pd.load("table", source=wild, tasks=tasks, inputs=INPUTS)
    b = pd.load("table", source=prescaled, tasks=tasks, inputs=INPUTS)
    assert isinstance(a, pd.DataSplits) and isinstance(b, pd.DataSplits)
    mse_a, mse_b = fit_mse(a), fit_mse(b)
    # The same standardised problem: the errors differ by the units squared only.
    assert mse_a["price"] == pytest.approx(mse_b["price"] * 1e10, rel=1e-3)
    assert mse_a["rate"] == pytest.approx(mse_b["rate"] * 1e-6, rel=1e-3)
    # And they are in the table's units: far better than the mean predictor there.
    for name, data in (("price", a), ("rate", a)):
        y = data.test.targets[name]
        y = y[~y.isnan()].double()
        assert mse_a[name] < 0.2 * float(y.var(unbiased=False)), name


def test_unscaled_wild_units_warn_and_name_scale_invariant_balancers(houses_csv: Path) -> None:
    with pytest.warns(UserWarning, match="differ") as record:
        pd.load("table", source=houses_csv, tasks=TASKS, scale_targets=False)
    message = str(record[0].message)
    assert "gradient_norm" in message and "initial_loss" in message and "'price'" in message


def test_metrics_and_predictions_in_original_units_by_hand(
    houses_csv: Path, tmp_path: Path
) -> None:
    from polytask.models import create
    from polytask.training import TrainerConfig

    data = pd.load("table", source=houses_csv, tasks={"price": "mse"}, inputs=INPUTS)
    assert isinstance(data, pd.DataSplits)
    model = create("shared_bottom", input_dim=data.input_shape[0], heads={"price": 1})
    config = TrainerConfig(
        max_steps=50, batch_size=32, progress=False, run_dir=str(tmp_path / "run")
    )
    trainer = make_trainer(model, data, config)
    trainer.fit(data.train, data.val)
    reported = trainer.evaluate(data.test)["metrics"]["price"]["mse"]
    run = __import__("polytask").load_run(tmp_path / "run")
    predicted = run.predict(data.test)["price"].double().reshape(-1)
    y = data.test.targets["price"].double()
    keep = ~y.isnan()
    by_hand = float(((predicted[keep] - y[keep]) ** 2).mean())
    assert reported == pytest.approx(by_hand, rel=1e-4)
    mean, std = data.tasks[0].target_scale
    raw = model.eval()(data.test.inputs).predictions["price"].double().reshape(-1)
    assert torch.allclose(predicted, raw * std + mean, rtol=1e-6)


def test_dataframe_and_parquet_sources_match_csv(houses_csv: Path, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.read_csv(houses_csv)
    frame.to_parquet(tmp_path / "houses.parquet")
    from_csv = pd.load("table", source=houses_csv, tasks=TASKS)
    for source in (frame, tmp_path / "houses.parquet"):
        other = pd.load("table", source=source, tasks=TASKS)
        assert isinstance(other, pd.DataSplits) and isinstance(from_csv, pd.DataSplits)
        assert torch.allclose(other.train.inputs, from_csv.train.inputs)
        for task in TASKS:
            assert torch.allclose(
                other.test.targets[task], from_csv.test.targets[task], equal_nan=True
            )


def test_split_column_and_classes(tmp_path: Path) -> None:
    table = houses(90)
    table["part"] = (["train"] * 60) + (["VAL"] * 15) + (["test"] * 15)
    data = pd.load("table", source=write_csv(tmp_path / "t.csv", table),
                   tasks={"kind": "ce", "sold": "bce"}, split_column="part",
                   inputs=INPUTS)  # fmt: skip
    assert isinstance(data, pd.DataSplits)
    assert data.metadata["sizes"] == {"train": 60, "val": 15, "test": 15}
    assert data.metadata["classes"]["kind"] == ["big", "mid", "small"]
    assert data.tasks[0].num_classes == 3 and data.train.targets["kind"].dtype == torch.long
    assert data.input_shape[0] == 4 + 2  # city and the numbers: 'part' is not an input


def test_embedding_encoding_builds_a_feature_schema(houses_csv: Path) -> None:
    data = pd.load("table", source=houses_csv, tasks=TASKS, encoding="embedding", inputs=INPUTS)
    assert isinstance(data, pd.DataSplits)
    assert data.spec.kind == "features"
    assert set(data.train.inputs) == {"city", "dense"}  # type: ignore[arg-type]


def assert_same_splits(data: pd.DataSplits, expected: pd.DataSplits, atol: float) -> None:
    """The same tasks, and in every split the same inputs (to ``atol``) and targets."""
    assert [t.name for t in data.tasks] == [t.name for t in expected.tasks]
    for split in ("train", "val", "test"):
        mine, theirs = data.split(split), expected.split(split)
        assert torch.allclose(mine.inputs, theirs.inputs, atol=atol)  # type: ignore[arg-type]
        for task in theirs.targets:
            assert torch.allclose(mine.targets[task], theirs.targets[task], equal_nan=True)


def test_per_task_table_reproduces_per_task_splits(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(n, 3, generator=g) for n in (30, 45, 25)]
    ys = [x @ torch.tensor([1.0, -2.0, 0.5]) + 10 * t for t, x in enumerate(xs)]
    fractions = (0.6, 0.2, 0.2)
    expected = per_task_splits("toy", xs, ys, ["school_1", "school_2", "school_3"],
                               fractions, 7, {}, standardize_columns=(1,))  # fmt: skip
    table: dict[str, list[Any]] = {"school": [], "a": [], "b": [], "c": [], "score": []}
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        for row, target in zip(x.double().tolist(), y.double().tolist(), strict=True):
            for key, value in zip(
                ("school", "a", "b", "c", "score"), (t + 1, *row, target), strict=True
            ):
                table[key].append(repr(value) if isinstance(value, float) else value)
    with pytest.warns(UserWarning, match="scale_targets is off"):  # schools differ in level
        data = pd.load("table", source=write_csv(tmp_path / "s.csv", table), tasks={"score": "mse"},
                       task_column="school", fractions=fractions, seed=7,
                       standardize_inputs=["b"], scale_targets=False)  # fmt: skip
    assert isinstance(data, pd.DataSplits)
    assert_same_splits(data, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "options", "words"),
    [
        ({}, {"tasks": {"prize": "mse"}}, "unknown target column 'prize'. Did you mean 'price'"),
        (
            {"price": ["cheap"] * 300},
            {"tasks": {"price": "mse"}},
            "task 'price' (mse) needs numbers; data row 1 has 'cheap'",
        ),
        ({}, {"tasks": {"kind": "bce"}}, "set positive: VALUE"),
        ({}, {"tasks": {"price": "mse"}, "inputs": ["area", "price"]}, "cannot be inputs too"),
        ({}, {"tasks": {"price": {"loss": "mse", "metric": ["mae"]}}}, "unknown key(s) ['metric']"),
        ({}, {"tasks": {"price": "msee"}}, "Did you mean 'mse'"),
        ({"area": [""] + [1.0] * 299}, {"tasks": {"price": "mse"}}, "missing_inputs: mean"),
        (
            {"part": ["train"] * 299 + ["tst"]},
            {"tasks": {"price": "mse"}, "split_column": "part"},
            "holds ['tst']",
        ),
        ({}, {"tasks": {"price": "mse"}, "categorical": ["price"]}, "not input columns"),
        ({}, {"tasks": {"price": "mse"}, "categorical": []}, "input column 'city' needs numbers"),
    ],
)
def test_bad_tables_give_one_clear_line(
    tmp_path: Path, change: dict[str, list[Any]], options: dict[str, Any], words: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", {**houses(), **change})
    with pytest.raises(TableError) as info:
        pd.load("table", source=path, **{"inputs": INPUTS, **options})
    assert words in str(info.value) and "\n" not in str(info.value)


def test_unseen_class_at_test_time_is_named(tmp_path: Path) -> None:
    table = houses(40)
    table["kind"] = ["a", "b"] * 19 + ["c", "c"]
    table["part"] = ["train"] * 30 + ["val"] * 5 + ["test"] * 5
    path = write_csv(tmp_path / "u.csv", table)
    with pytest.raises(
        TableError, match=r"class 'c' appears in 2 test row\(s\) but in no training row"
    ):
        pd.load("table", source=path, tasks={"kind": "ce"}, split_column="part", inputs=INPUTS)


def test_missing_inputs_mean_fills_with_the_training_mean(tmp_path: Path) -> None:
    table = houses(100)
    table["area"] = ["", *table["area"][1:]]
    data = pd.load("table", source=write_csv(tmp_path / "m.csv", table), tasks={"price": "mse"},
                   missing_inputs="mean", standardize_inputs=False, inputs=INPUTS)  # fmt: skip
    assert isinstance(data, pd.DataSplits)
    assert not torch.isnan(data.train.inputs).any()  # type: ignore[arg-type]


EXAMPLE = Path(__file__).parents[1] / "examples" / "table"


def test_shipped_example_table_is_what_its_script_writes(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_houses", EXAMPLE / "make_houses.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write(tmp_path / "houses.csv")
    assert written.read_text() == (EXAMPLE / "houses.csv").read_text()


def test_cli_trains_and_compares_the_example_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example as its YAML says, run from another folder (the CSV is found beside the
    YAML), with a short schedule; metrics come out in the targets' units."""
    from polytask.cli.main import main

    monkeypatch.chdir(tmp_path)
    config = str(EXAMPLE / "houses.yaml")
    assert main(["train", config, "schedule.max_steps=60", "progress=false"]) == 0
    out = capsys.readouterr().out
    assert "schedule sized for 280 training rows" in out and "energy_class" in out
    price_mse = next(
        float(line.split()[2])
        for line in out.splitlines()
        if line.startswith("price  ") and " mse " in line
    )
    assert price_mse > 1e6  # currency units squared, not standard units
    assert main(["compare", config, "schedule.max_steps=30", "--balancers", "equal,gradient_norm",
                 "--seeds", "1"]) == 0  # fmt: skip
    assert "gradient_norm" in capsys.readouterr().out


def test_parquet_without_pyarrow_names_the_extra(
    houses_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    with pytest.raises(TableError, match=r"pip install 'polytask\[table\]'"):
        pd.load("table", source=path, tasks=TASKS)


def test_cli_error_for_a_bad_table_is_one_line(
    tmp_path: Path, houses_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from polytask.cli.main import main

    config = tmp_path / "c.yaml"
    config.write_text(
        "dataset: {name: table, options: {source: houses.csv, tasks: {prize: mse}}}\n"
    )
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'price'" in err and str(houses_csv) in err


def test_large_and_small_metrics_are_shown_in_scientific_notation() -> None:
    from polytask.evaluation.text import number_text

    assert number_text(1052337024.0) == "1.0523e+09"
    assert number_text(46.13749) == "46.1375"
    assert number_text(0.00001234) == "1.2340e-05"
    assert number_text(0.0) == "0.0000"


@pytest.mark.skipif(not have_data("school"), reason="local school copy not found")
def test_school_as_a_per_task_table_reproduces_the_school_loader(tmp_path: Path) -> None:
    """The school data written out as a CSV with a school column, loaded by the table data
    set with the loader's split and preprocessing: the same rows, inputs and targets."""
    from scipy.io import loadmat

    from polytask.data.files import resolve
    from polytask.data.school import FILE, FOLDER

    mat = loadmat(resolve(FOLDER, FILE, DATA_ROOT))
    names = [f"x{j}" for j in range(28)]
    table: dict[str, list[Any]] = {"school": [], **{n: [] for n in names}, "score": []}
    for t in range(mat["X"].shape[1]):
        for x, y in zip(mat["X"][0, t].tolist(), mat["Y"][0, t].ravel().tolist(), strict=True):
            table["school"].append(f"{t + 1:03d}")
            for n, v in zip(names, x, strict=True):
                table[n].append(repr(float(v)))
            table["score"].append(repr(float(y)))
    expected = pd.load("school", root=DATA_ROOT)
    data = pd.load("table", source=write_csv(tmp_path / "school.csv", table),
                   tasks={"score": "mse"}, task_column="school", fractions=(0.65, 0.1, 0.25),
                   standardize_inputs=["x3", "x4"], scale_targets=False)  # fmt: skip
    assert isinstance(data, pd.DataSplits) and isinstance(expected, pd.DataSplits)
    assert_same_splits(data, expected, atol=1e-5)


def test_summaries_of_large_values_are_readable() -> None:
    from polytask.evaluation.stats import summarize

    assert summarize([9299257344.0]).format() == "9.2993e+09"
    assert summarize([9.3e9, 9.5e9, 9.1e9]).format() == "9.3000e+09 +- 5.0e+08"
    assert summarize([0.5, 0.7]).format(2) == "0.60 +- 1.27"
