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


def test_no_loader_option_is_shadowed_by_the_split_argument_of_load() -> None:
    # load(name, split=...) picks one split, so a loader option named "split" could never
    # be passed through the registry (census_income's fractions once were).
    for entry in polytask.data.DATASETS:
        assert "split" not in entry.options(), entry.name


def test_census_income_fractions_pass_through_load() -> None:
    if not have_data("census_income_kdd"):
        pytest.skip("local census_income_kdd copy not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = polytask.data.load("census_income", root=DATA_ROOT, fractions=(0.8, 0.1, 0.1))
    assert (len(data.train), len(data.val), len(data.test)) == (79_810, 9_976, 9_976)


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
    married = float(
        data.train.targets["never_married"].sum() + data.val.targets["never_married"].sum()
    )
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
    with pytest.raises(
        DataFileError, match=r"adult.data.gz is corrupted: MD5 .* expected 945afe60"
    ):
        polytask.data.load("adult", root=tmp_path)
    (folder / "adult.data.gz").unlink()
    monkeypatch.setenv("POLYTASK_OFFLINE", "1")
    with pytest.raises(DataFileError, match=r"adult\.data not found and downloads are disabled"):
        polytask.data.load("adult", root=tmp_path)


def load(name: str, folder: str, **options):
    if not have_data(folder):
        pytest.skip(f"local {folder} copy not found")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = polytask.data.load(name, root=DATA_ROOT, **options)
    return data, [str(w.message) for w in caught]


def labelled(data, task: str) -> int:
    return sum(
        int((~torch.isnan(getattr(data, s).targets[task])).sum()) for s in ("train", "val", "test")
    )


def test_school_per_task_data() -> None:
    data, _ = load("school", "school")
    # SOURCE.md: 139 tasks, 15,362 students, 28-d input (last column the bias), Y in 1..70.
    assert len(data.tasks) == 139 and data.input_shape == (28,)
    assert len(data.train) + len(data.val) + len(data.test) == 15_362
    assert sum(labelled(data, t.name) for t in data.tasks) == 15_362  # one task per row
    ys = torch.cat([data.train.targets[t.name] for t in data.tasks])
    ys = ys[~torch.isnan(ys)]
    assert ys.min() >= 1 and ys.max() <= 70
    assert torch.all(data.train.inputs[:, 27] == 1)
    first = data.tasks[0].name
    n = labelled(data, first)
    assert abs(int((~torch.isnan(data.test.targets[first])).sum()) - n / 4) <= 1  # 75/25


def test_computer_survey_profiles_split() -> None:
    data, _ = load("computer_survey", "computer_survey")
    assert len(data.tasks) == 190 and data.input_shape == (14,)
    assert (len(data.train), len(data.val), len(data.test)) == (190 * 12, 190 * 4, 190 * 4)
    ratings = torch.cat([data.train.targets[t.name] for t in data.tasks])
    ratings = ratings[~torch.isnan(ratings)]
    assert ratings.min() >= 0 and ratings.max() <= 10


def test_parkinsons_both_modes() -> None:
    data, _ = load("parkinsons", "parkinsons_telemonitoring")
    assert len(data.train) + len(data.val) + len(data.test) == 5_875
    assert [t.name for t in data.tasks] == ["motor_UPDRS", "total_UPDRS"]
    mean, std = data.metadata["target_scale"]["total_UPDRS"]
    assert 26 < mean < 32 and 9 < std < 12  # SOURCE.md: mean 29.02, sd 10.70 (all rows)
    patients, _ = load("parkinsons", "parkinsons_telemonitoring", mode="patients")
    assert len(patients.tasks) == 42
    assert sum(labelled(patients, t.name) for t in patients.tasks) == 5_875
    # patient_targets: both tasks on every row, every patient in every split, rows grouped
    # by patient (each row in exactly one group), target scales from the training rows.
    both, _ = load("parkinsons", "parkinsons_telemonitoring", mode="patient_targets")
    assert [t.name for t in both.tasks] == ["motor_UPDRS", "total_UPDRS"]
    for split in ("train", "val", "test"):
        groups = both.metadata["groups"][split]
        assert len(groups) == 42
        rows = torch.cat(list(groups.values())).sort().values
        assert torch.equal(rows, torch.arange(len(getattr(both, split))))
    total = both.train.targets["total_UPDRS"].double()
    assert both.tasks[1].target_scale == pytest.approx((float(total.mean()), float(total.std())))


def test_sarcos_warns_about_its_split() -> None:
    data, caught = load("sarcos", "sarcos_test")
    assert len(data.train) + len(data.val) + len(data.test) == 4_449
    assert [t.name for t in data.tasks] == [f"torque_{j}" for j in range(1, 8)]
    assert data.input_shape == (21,)
    assert any("sarcos_inv.mat is absent" in m for m in caught)
    assert "NOT comparable" in data.metadata["split"]


def test_yeast_mulan_split_label_counts() -> None:
    data, _ = load("yeast", "yeast_multilabel")
    assert len(data.train) + len(data.val) == 1_500 and len(data.test) == 917
    counts = [
        int(data.train.targets[t.name].sum() + data.val.targets[t.name].sum()) for t in data.tasks
    ]
    assert counts == [476, 645, 598, 532, 441, 378, 261, 289, 98, 161, 198, 1128, 1116, 21]
    assert data.input_shape == (103,)


def test_energy_efficiency() -> None:
    data, _ = load("energy_efficiency", "energy_efficiency")
    assert len(data.train) + len(data.val) + len(data.test) == 768
    assert [t.name for t in data.tasks] == [
        "heating_load",
        "cooling_load",
    ] and data.input_shape == (8,)


def test_snips_counts() -> None:
    data, _ = load("snips", "snips_joint")
    assert (len(data.train), len(data.val), len(data.test)) == (13_084, 700, 700)
    assert len(data.metadata["intents"]) == 7 and len(data.metadata["tags"]) == 72
    assert data.metadata["vocab_size"] == 11_418 + 3  # SOURCE.md: 11,418 token types
    assert int((data.train.targets["slots"] >= 0).sum()) == 117_700  # one tag per token
    assert int((data.test.targets["slots"] >= 0).sum()) == 6_354
    assert torch.all(data.train.inputs[:, 0] == 2) and torch.all(
        data.train.targets["slots"][:, 0] == -1
    )


@pytest.mark.parametrize(
    ("name", "folder", "labels", "rows", "positives"),
    [
        (
            "ali_ccp",
            "ali_ccp_sample",
            ("click", "purchase"),
            (100, 50, 50),
            {"click": 12, "purchase": 3},
        ),
        (
            "aliexpress",
            "aliexpress_sample",
            ("click", "conversion"),
            (90, 10, 20),
            {"click": 70, "conversion": 4},
        ),
    ],
)
def test_recommendation_samples(name, folder, labels, rows, positives) -> None:
    data, caught = load(name, folder)
    assert [t.name for t in data.tasks] == list(labels)
    assert (len(data.train), len(data.val), len(data.test)) == rows
    assert {
        t: int(sum(getattr(data, s).targets[t].sum() for s in ("train", "val", "test")))
        for t in labels
    } == positives
    assert any("full files absent" in m for m in caught)
    assert isinstance(data.train.inputs, dict) and "feature_schema" in data.metadata


@pytest.mark.skipif(not have_data("ali_ccp_sample"), reason="local ali_ccp sample not found")
def test_esmm_trains_on_ali_ccp_through_a_configuration(tmp_path) -> None:
    from polytask.training.experiment import ExperimentConfig, run_experiment

    config = ExperimentConfig.from_dict(
        {
            "dataset": {"name": "ali_ccp", "options": {"root": str(DATA_ROOT)}},
            "model": {
                "name": "esmm",
                "options": {"ctr": "click", "ctcvr": "purchase", "tower_dims": [8]},
            },
            "schedule": {"epochs": 2, "batch_size": 32},
            "progress": False,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_experiment(config)
    assert result.steps == 8 and set(result.test["loss"]) == {"click", "purchase"}


@pytest.mark.skipif(not have_data("snips_joint"), reason="local snips copy not found")
def test_transformer_trains_on_snips_through_a_configuration() -> None:
    from polytask.training.experiment import ExperimentConfig, run_experiment

    config = ExperimentConfig.from_dict(
        {
            "dataset": {"name": "snips", "options": {"root": str(DATA_ROOT)}},
            "model": {
                "name": "transformer",
                "options": {"head_types": {"slots": "token"}, "d_model": 16, "num_heads": 2,
                            "num_layers": 1, "ffn_dim": 32},
            },
            "schedule": {"epochs": 1, "max_steps": 3, "batch_size": 64},
            "progress": False,
        }
    )  # fmt: skip
    result = run_experiment(config)
    assert result.steps == 3
    slots = result.test["metrics"]["slots"]
    assert 0 <= slots["accuracy"] <= 1
    # Span F1 and sentence accuracy on the real tags: an untrained tagger finds few of the
    # test set's slots, and every sentence has one, so both stay well below token accuracy.
    assert 0 <= slots["span_f1"] < slots["accuracy"] and 0 <= slots["sentence_accuracy"] < 0.5


def test_a_file_without_an_official_download_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"school\.mat not found, and no official download"):
        polytask.data.load("school", root=tmp_path)


@pytest.mark.skipif(not have_data("ali_ccp_sample"), reason="local ali_ccp sample not found")
def test_full_recommendation_files_are_read_in_the_same_format(tmp_path: Path) -> None:
    folder = tmp_path / "ali_ccp_sample"
    folder.mkdir()
    for split in ("train", "val", "test"):
        source = Path(DATA_ROOT) / "ali_ccp_sample" / f"ali_ccp_{split}_sample.csv"
        (folder / f"ali_ccp_{split}.csv").write_bytes(source.read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = polytask.data.load("ali_ccp", root=tmp_path)
    assert data.metadata["files"] == "full files" and not caught
    assert (len(data.train), len(data.val), len(data.test)) == (100, 50, 50)
    (folder / "ali_ccp_val.csv").write_text("click,purchase,other\n1,0,3\n")
    with pytest.raises(ValueError, match="expected the header"):
        polytask.data.load("ali_ccp", root=tmp_path)
