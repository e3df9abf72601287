"""Settings: defaults, file, environment and explicit values, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from dicom_node.settings import (
    LogFormat,
    Settings,
    effective_settings,
    load_settings,
    mask_url,
    read_config_file,
)


def test_defaults_need_no_server(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'blsnode.db'}"
    assert settings.broker_url == "filesystem://"
    assert settings.spool_dir == tmp_path / "spool"
    assert settings.network.port == 11112
    assert settings.network.ae_title == "BLSNODE"


def test_toml_file_is_read(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[network]\nport = 4242\nae_title = "HANDS"\n[logging]\nformat = "json"\n')
    settings = load_settings(config)
    assert settings.network.port == 4242
    assert settings.network.ae_title == "HANDS"
    assert settings.logging.format is LogFormat.JSON


def test_yaml_file_is_read(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(
        "network:\n  allowed_callers:\n    - ae_title: MODALITY1\n      host: 10.0.0.5\n"
    )
    settings = load_settings(config)
    assert settings.network.allowed_callers[0].ae_title == "MODALITY1"
    assert settings.network.allowed_callers[0].host == "10.0.0.5"


def test_environment_beats_file_and_arguments_beat_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "node.toml"
    config.write_text('data_dir = "from-file"\n[network]\nport = 4242\nmax_associations = 3\n')
    monkeypatch.setenv("BLSNODE_NETWORK__PORT", "5353")
    monkeypatch.setenv("BLSNODE_DATA_DIR", "from-env")
    settings = load_settings(config, data_dir=tmp_path / "from-flag")
    assert settings.network.port == 5353
    assert settings.network.max_associations == 3
    assert settings.data_dir == tmp_path / "from-flag"


def test_none_override_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLSNODE_DATA_DIR", "/srv/blsnode")
    assert load_settings(data_dir=None).data_dir == Path("/srv/blsnode")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[network]\nport = 70000\n", "port"),
        ('[network]\nae_title = "WAY_TOO_LONG_FOR_AN_AE"\n', "AE title"),
        ("[netwrk]\nport = 1\n", "netwrk"),
        ('[logging]\nlevel = "LOUD"\n', "LOUD"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(text)
    with pytest.raises(ValidationError, match=message):
        load_settings(config)


def test_unreadable_files_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[network\n")
    with pytest.raises(ValueError, match="not valid"):
        read_config_file(broken)
    ini = tmp_path / "node.ini"
    ini.write_text("x=1")
    with pytest.raises(ValueError, match=r"use \.toml"):
        read_config_file(ini)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ValidationError):
        settings.network.port = 1  # type: ignore[misc]


def test_secrets_are_masked() -> None:
    assert (
        mask_url("postgresql://node:s3cret@db:5432/blsnode")
        == "postgresql://node:***@db:5432/blsnode"
    )
    assert mask_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    settings = Settings(
        database={"url": "postgresql://u:hunter2@h/db"}, broker={"url": "redis://:pw@h/0"}
    )
    shown = str(effective_settings(settings))
    assert "hunter2" not in shown
    assert "pw@" not in shown
