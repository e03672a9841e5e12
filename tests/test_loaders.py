"""Every real-data loader on the local copies: counts, tasks, label ranges and split sizes
against the numbers in the data's SOURCE.md files; preprocessing fitted on training data
only; clear errors for missing or corrupted files."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

import polytask
from polytask.data import DataFileError
from polytask.data.tabular import TabularEncoder

from .conftest import DATA_ROOT, have_data


def total(data, task: str) -> float:
    return sum(float(getattr(data, s).targets[task].sum()) for s in ("train", "val", "test"))


@pytest.fixture(scope="module")
def census():
    if not have_data("census_income_kdd"):
        pytest.skip("local census_income_kdd copy not found")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = polytask.data.load("census_income", root=DATA_ROOT)
    return data, caught


def test_census_income_counts_and_split(census) -> None:
    data, caught = census
    # SOURCE.md: 99,762 rows; income "50000+." 6,186; "Never married" 43,143.
    assert len(data.train) + len(data.val) + len(data.test) == 99_762
    assert (len(data.train), len(data.val), len(data.test)) == (59_857, 19_952, 19_953)
    assert total(data, "income") == 6_186 and total(data, "never_married") == 43_143
    assert [t.name for t in data.tasks] == ["income", "never_married"]
    for split in ("train", "val", "test"):
        for y in getattr(data, split).targets.values():
            assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert any("census-income.data.gz is absent" in str(w.message) for w in caught)
    assert "NOT comparable" in data.metadata["split"]
    assert "marital stat" not in data.metadata["features"]["categorical"]
    assert "instance weight" not in data.metadata["features"]["continuous"]


def test_census_preprocessing_is_fitted_on_train_only(census) -> None:
    data, _ = census
    dense = slice(-7, None)  # the 7 standardised continuous columns come last
    train = data.train.inputs[:, dense]
    torch.testing.assert_close(train.mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.std(0, unbiased=False), torch.ones(7), atol=1e-4, rtol=0)
    test = data.test.inputs[:, dense]
    assert (test.mean(0).abs() > 1e-4).any()  # test statistics were not used


def test_tabular_encoder_never_sees_test_values() -> None:
    train = [["a", "1.0"], ["b", "3.0"]]
    test = [["c", "5.0"], ["a", "1.0"]]
    enc = TabularEncoder.fit(train, [0], [1], ["cat", "x"])
    assert enc.codes(test).tolist() == [[0], [1]]  # "c" unseen in training -> 0
    assert enc.dense(test).squeeze(1).tolist() == [3.0, -1.0]  # (x - 2) / 1 from train stats
    onehot = enc.transform(test, "onehot")
    assert onehot.shape == (2, 3 + 1) and onehot[0, 0] == 1  # the unseen slot
    schema = enc.schema(4)
    assert schema["sparse"][0]["vocab_size"] == 3 and schema["dense"][0]["dim"] == 1


@pytest.mark.skipif(not have_data("adult"), reason="local adult copy not found")
def test_adult_official_split_counts() -> None:
    data = polytask.data.load("adult", root=DATA_ROOT)
    # SOURCE.md: train 32,561 (>50K 7,841; Never-married 10,683); test 16,281 (>50K 3,846).
    assert len(data.train) + len(data.val) == 32_561 and len(data.val) == 3_256
    assert len(data.test) == 16_281
    train_income = float(data.train.targets["income"].sum() + data.val.targets["income"].sum())
    assert train_income == 7_841 and float(data.test.targets["income"].sum()) == 3_846
    married = float(data.train.targets["never_married"].sum() + data.val.targets["never_married"].sum())
    assert married == 10_683
    assert "relationship" not in data.metadata["features"]["categorical"]
    by_sex = polytask.data.load("adult", root=DATA_ROOT, second="sex", encoding="embedding")
    assert [t.name for t in by_sex.tasks] == ["income", "sex"]
    assert isinstance(by_sex.train.inputs, dict) and "sex" not in by_sex.train.inputs
    assert by_sex.metadata["feature_schema"]["dense"][0]["dim"] == 5


def test_corrupted_and_missing_files_name_the_fix(tmp_path: Path, monkeypatch) -> None:
    if not have_data("adult"):
        pytest.skip("local adult copy not found")
    folder = tmp_path / "adult"
    shutil.copytree(Path(DATA_ROOT) / "adult", folder)
    folder.chmod(0o755)
    (folder / "adult.data.gz").chmod(0o644)
    (folder / "adult.data.gz").write_bytes(b"broken")
    with pytest.raises(DataFileError, match=r"adult.data.gz is corrupted: MD5 .* expected 945afe60"):
        polytask.data.load("adult", root=tmp_path)
    (folder / "adult.data.gz").unlink()
    monkeypatch.setenv("POLYTASK_OFFLINE", "1")
    with pytest.raises(DataFileError, match="adult.data not found and downloads are disabled"):
        polytask.data.load("adult", root=tmp_path)
