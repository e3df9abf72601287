"""CLI wiring: global options, lazy subcommands, JSON output, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from blsnode.cli.main import COMMANDS, SUMMARIES, cli

REQUIRED = {
    "serve",
    "worker",
    "status",
    "jobs",
    "destinations",
    "process",
    "locate",
    "separate",
    "train",
    "evaluate",
    "models",
    "config",
}


def test_every_required_command_is_listed_with_a_summary() -> None:
    assert set(COMMANDS) >= REQUIRED
    assert set(SUMMARIES) == set(COMMANDS)
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in REQUIRED:
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_own_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_config_show_json_honours_config_file_and_data_dir(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("network:\n  port: 4104\ndatabase:\n  url: postgresql://u:topsecret@h/db\n")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "--data-dir", str(tmp_path / "d"), "config", "show", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["network"]["port"] == 4104
    assert data["data_dir"] == str(tmp_path / "d")
    assert data["paths"]["spool_dir"] == str(tmp_path / "d" / "spool")
    assert "topsecret" not in result.stdout


def test_config_and_data_dir_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("[network]\nport = 4105\n")
    env = {"BLSNODE_CONFIG": str(config), "BLSNODE_DATA_DIR": str(tmp_path / "e")}
    result = CliRunner().invoke(cli, ["config", "show", "--json"], env=env)
    data = json.loads(result.stdout)
    assert data["network"]["port"] == 4105
    assert data["data_dir"] == str(tmp_path / "e")


def test_bad_settings_are_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("[network]\nport = -1\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "config", "show"])
    assert result.exit_code == 2
    assert "invalid settings" in result.output
    assert "Traceback" not in result.output


def test_console_script_runs_without_loading_torch() -> None:
    code = (
        "import sys; from blsnode.cli.main import cli;"
        "cli(['config','show','--json'], standalone_mode=False);"
        "sys.stderr.write(str('torch' in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["network"]["ae_title"] == "BLSNODE"
    assert done.stderr.strip().endswith("False")
