"""dsassist.toml: a bad file is one line naming the key, exit 2, nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dsassist.cli import app
from dsassist.errors import DSAssistError
from dsassist.llm.settings import load_settings

GOOD = """
[llm.providers.local]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "DSASSIST_TEST_MISSING_KEY"

[llm.models.cheap]
provider = "local"
name = "small"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[llm.routes]
coder = ["cheap"]

[budget]
usd = 0.5
wall = "2m"
"""


def write(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dsassist.toml"
    path.write_text(text)
    return path


def test_good_file_loads(tmp_path):
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.llm.route("coder") == ["cheap"] and settings.llm.route("fixer") == []
    assert settings.budget.usd == 0.5 and settings.budget.wall == "2m"
    assert settings.llm.models["cheap"].cost(1_000_000, 1_000_000) == pytest.approx(0.75)


def test_no_file_means_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings().llm is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('provider = "local"', 'provider = "locl"'), "model 'cheap' names unknown provider 'locl'"),
        (('coder = ["cheap"]', 'coder = ["cheep"]'), "routes.coder names unknown model 'cheep'"),
        (("input_usd_per_mtok", "input_usd_per_token"), "llm.models.cheap.input_usd_per_token: Extra inputs"),
        (
            ('kind = "openai"', 'kind = "gemini"'),
            "llm.providers.local.kind: Input should be 'openai' or 'anthropic'",
        ),
        (("usd = 0.5", "usd = -1"), "budget.usd: Input should be greater than 0"),
        (
            ('api_key_env = "DSASSIST_TEST_MISSING_KEY"', 'api_key = "sk-123"'),
            "llm.providers.local.api_key: keys",
        ),
        (("[llm.routes]", "[llm.routes"), "invalid TOML"),
        (('wall = "2m"', 'wall = "soon"'), "budget.wall: invalid duration 'soon'"),
        (
            ('api_key_env = "DSASSIST_TEST_MISSING_KEY"', 'api_key_env = "sk-proj-SECRET-1"'),
            "api_key_env: String",
        ),
    ],
)
def test_bad_file_names_the_key(tmp_path, edit, message):
    with pytest.raises(DSAssistError, match=r"dsassist\.toml: ") as err:
        load_settings(write(tmp_path, GOOD.replace(*edit)))
    assert message in str(err.value)
    assert "\n" not in str(err.value) and "SECRET" not in str(err.value)


@pytest.mark.parametrize("text", ["llm = 1", "[llm]\nproviders = [1]", "budget = 3"])
def test_wrong_shapes_are_one_line_errors(tmp_path, text):
    with pytest.raises(DSAssistError, match=r"dsassist\.toml: "):
        load_settings(write(tmp_path, text))


def test_cli_bad_config_and_missing_key_exit_2_and_write_nothing(tmp_path, example, monkeypatch):
    monkeypatch.delenv("DSASSIST_TEST_MISSING_KEY", raising=False)
    runner = CliRunner()
    cases = {
        "bad": (
            write(tmp_path, GOOD.replace('provider = "local"', 'provider = "x"')),
            "unknown provider 'x'",
        ),
        "nokey": (
            write(tmp_path / "nokey", GOOD),
            "environment variable DSASSIST_TEST_MISSING_KEY is not set",
        ),
        "absent": (tmp_path / "nope.toml", "config file"),
    }
    for name, (config, message) in cases.items():
        out = tmp_path / f"run-{name}"
        args = [
            "run",
            str(example("penguins")),
            "--target",
            "species",
            "--out",
            str(out),
            "--config",
            str(config),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not out.exists()
