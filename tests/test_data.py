"""Reading the user's table, checking the target, guessing the task; parsing durations."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pandas as pd
import pytest

from dsassist.config import parse_duration
from dsassist.data import check_target, infer_task, read_table
from dsassist.errors import DSAssistError


def error_of(call, *args) -> str:
    with pytest.raises(DSAssistError) as info:
        call(*args)
    message = str(info.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# ---- read_table -----------------------------------------------------------------------


def test_csv_is_read_with_its_hash(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("age,city,label\n31,Oslo,1\n45,Rome,0\n22,Lima,1\n")
    ds = read_table(path)
    assert ds.shape == (3, 3)
    assert ds.format == "csv"
    assert list(ds.frame.columns) == ["age", "city", "label"]
    assert ds.frame["age"].tolist() == [31, 45, 22]
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.path.is_absolute()


def test_tsv_is_split_on_tabs(tmp_path):
    path = tmp_path / "people.tsv"
    path.write_text("name\tnote\nann\tlikes a, b and c\nbob\tnone\n")
    ds = read_table(path)
    assert ds.format == "tsv" and ds.shape == (2, 2)
    assert ds.frame["note"].tolist() == ["likes a, b and c", "none"]


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5, np.nan],
            "n": [1, 2, 3],
            "s": ["a", "b", None],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    ds = read_table(path)
    assert ds.format == "parquet"
    assert ds.shape == (3, 4)
    pd.testing.assert_frame_equal(ds.frame, frame, check_dtype=False)
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file(tmp_path):
    message = error_of(read_table, tmp_path / "nope.csv")
    assert "not found" in message and "nope.csv" in message


def test_directory(tmp_path):
    folder = tmp_path / "looks_like.csv"
    folder.mkdir()
    message = error_of(read_table, folder)
    assert "not a file" in message and "looks_like.csv" in message


@pytest.mark.parametrize("name", ["table.xlsx", "table.json", "table"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    message = error_of(read_table, path)
    assert "unsupported format" in message and name in message
    assert ".csv" in message and ".parquet" in message  # says what would work


@pytest.mark.parametrize("content", ["", "\n\n\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    message = error_of(read_table, path)
    assert "empty" in message and "empty.csv" in message


def test_header_only_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,c\n")
    message = error_of(read_table, path)
    assert "no rows" in message and "header.csv" in message


@pytest.mark.parametrize(
    "content",
    [random.Random(0).randbytes(4096), b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(2048)],
    ids=["random-bytes", "png"],
)
def test_binary_garbage_in_csv(tmp_path, content):
    path = tmp_path / "garbage.csv"
    path.write_bytes(content)
    message = error_of(read_table, path)
    assert "garbage.csv" in message
    assert "not a text table" in message


def test_csv_that_is_not_a_table(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n7,8\n")
    message = error_of(read_table, path)
    assert "ragged.csv" in message and "not a readable csv table" in message
    assert "line 3" in message  # the parser's reason, first line only


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    message = error_of(read_table, path)
    assert "broken.parquet" in message and "not a readable parquet table" in message


def test_rows_wider_than_the_header_are_not_a_table(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text("age,label\n31,Oslo,1\n45,Rome,0\n22,Lima,1\n")
    with pytest.raises(DSAssistError):
        read_table(path)


# ---- check_target ---------------------------------------------------------------------


def test_check_target_returns_non_missing_values(tmp_path):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", None, "b", "a"]})
    values = check_target(frame, "y", tmp_path / "t.csv")
    assert values.tolist() == ["a", "b", "a"]


def test_unknown_target(tmp_path):
    frame = pd.DataFrame({"age": [1, 2], "survived": [0, 1]})
    message = error_of(check_target, frame, "Survived", tmp_path / "titanic.csv")
    assert "'Survived'" in message and "titanic.csv" in message
    assert "survived" in message and "age" in message  # lists the real columns


@pytest.mark.parametrize("values", [[1, 1, 1, 1], [None, 5, None, 5], [None, None, None, None]])
def test_single_valued_target(tmp_path, values):
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": values})
    message = error_of(check_target, frame, "y", tmp_path / "t.csv")
    assert "'y'" in message and "single value" in message


def test_target_without_features(tmp_path):
    frame = pd.DataFrame({"y": [0, 1, 0, 1]})
    message = error_of(check_target, frame, "y", tmp_path / "t.csv")
    assert "no feature columns" in message


# ---- infer_task -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[0, 1] * 50, ["yes", "no"] * 50, [True, False] * 50, [1.0, 2.0] * 50, ["a", "b", "a"] * 30],
)
def test_two_values_are_binary(values):
    assert infer_task(pd.Series(values)) == "binary"


@pytest.mark.parametrize(
    "values",
    [
        ["cat", "dog", "bird"] * 40,
        [0, 1, 2] * 50,  # iris-like integer labels
        list(range(8)) * 25,
    ],
)
def test_labels_and_small_integer_sets_are_multiclass(values):
    assert infer_task(pd.Series(values)) == "multiclass"


def test_real_values_are_regression():
    rng = np.random.default_rng(0)
    assert infer_task(pd.Series(rng.normal(100, 15, 200))) == "regression"
    assert infer_task(pd.Series([0.5, 1.5, 2.5] * 40)) == "regression"  # few but not integral
    assert infer_task(pd.Series(rng.integers(0, 1000, 300))) == "regression"  # many integers


# ---- parse_duration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m 15s", 5415.0),
        ("90", 90.0),
        (" 2M ", 120.0),
        ("1.5h", 5400.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "m", "5 minutes", "-5m", "1h30", "ten s"])
def test_parse_duration_rejects_bad_input(text):
    message = error_of(parse_duration, text)
    assert "invalid duration" in message and repr(text) in message
