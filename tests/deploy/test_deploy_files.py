"""Deployment files parse and name only settings and commands that exist.

Docker and systemd cannot run here, so the files are checked by parsing them: a renamed
setting or command breaks this test instead of a hospital's upgrade.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from blsnode.cli.main import COMMANDS
from dicom_node.settings import ENV_PREFIX, Settings, load_settings, read_config_file

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXAMPLE_SETTINGS = DEPLOY / "blsnode.example.toml"
ENV_NAME = re.compile(rf"\b({ENV_PREFIX}[A-Z0-9_]+)")
# In the example, "#key = value" and "#[section]" are options left commented out; prose
# comments start with "# ".
COMMENTED_OPTION = re.compile(r"(?m)^#(?=\[|[a-z_]+ = )")


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings section behind ``Section``, ``list[Section]`` or ``Section | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _section_model(argument)
        if found is not None:
            return found
    return None


def _settings_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every field path of the settings, into sections and into lists of sections."""
    paths: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        paths.add(path)
        section = _section_model(field.annotation)
        if section is not None:
            paths |= _settings_paths(section, path)
    return paths


def _paths_in(data: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Key paths of a parsed settings file; items of a list of tables share their prefix."""
    paths: set[tuple[str, ...]] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            paths.add((*prefix, key))
            paths |= _paths_in(value, (*prefix, key))
    elif isinstance(data, list):
        for item in data:
            paths |= _paths_in(item, prefix)
    return paths


SETTINGS_PATHS = _settings_paths(Settings)
# Variables read by the CLI or by our own unit files rather than by the settings object.
NON_SETTINGS_VARIABLES = {"BLSNODE_CONFIG", "BLSNODE_WORKER_DEVICE", "BLSNODE_WORKER_QUEUES"}


def _env_path(variable: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in variable.removeprefix(ENV_PREFIX).split("__"))


def _variables_in(text: str) -> set[str]:
    return set(ENV_NAME.findall(text)) - NON_SETTINGS_VARIABLES


def _systemd_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Parse a unit file: repeated keys are legal, so configparser will not do."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, separator, value = line.partition("=")
        if current is None or not separator:
            raise ValueError(f"{path.name}: cannot parse line {raw!r}")
        current.append((key.strip(), value.strip()))
    return sections


def test_compose_parses_and_uses_real_settings_and_commands() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    assert {"node", "worker-gpu", "redis", "postgres", "orthanc"} <= set(compose["services"])
    gpu = compose["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia"
    for name, service in compose["services"].items():
        command = service.get("command")
        if command and command[0] == "blsnode":
            assert command[1] in COMMANDS, f"service {name} runs unknown command {command[1]}"
    variables = _variables_in(text)
    assert variables, "compose should configure the node through BLSNODE_* variables"
    for variable in variables:
        assert _env_path(variable) in SETTINGS_PATHS, f"{variable} is not a setting"


@pytest.mark.parametrize("unit", ["blsnode.service", "blsnode-worker@.service"])
def test_systemd_units_parse_and_use_real_settings_and_commands(unit: str) -> None:
    path = DEPLOY / "systemd" / unit
    sections = _systemd_sections(path)
    assert {"Unit", "Service", "Install"} <= set(sections)
    service = dict(sections["Service"])
    command = service["ExecStart"].split()
    assert command[0].endswith("/blsnode")
    assert command[1] in COMMANDS
    for variable in _variables_in(path.read_text()):
        assert _env_path(variable) in SETTINGS_PATHS, f"{unit}: {variable} is not a setting"


def test_dockerfile_installs_every_package() -> None:
    """Every package the wheel ships (pyproject's find patterns) is copied into the image."""
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert "blsnode" in packages
    text = (DEPLOY / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} ./{package}" in text


def test_compose_mounts_files_that_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"service {name} mounts missing {source}"


def test_example_settings_as_shipped_are_the_defaults() -> None:
    # Compose and the units point at the example: as shipped it must change nothing.
    assert load_settings(EXAMPLE_SETTINGS).model_dump() == Settings().model_dump()


def test_example_settings_name_every_option(tmp_path: Path) -> None:
    uncommented = tmp_path / "every-option.toml"
    uncommented.write_text(COMMENTED_OPTION.sub("", EXAMPLE_SETTINGS.read_text()))
    # Every commented-out value is valid where it stands...
    settings = load_settings(uncommented)
    assert settings.destinations and settings.network.allowed_callers
    # ...and every setting, in sections and in lists of sections, is in the file.
    named = _paths_in(read_config_file(uncommented))
    missing = sorted(".".join(path) for path in SETTINGS_PATHS - named)
    assert not missing, f"deploy/blsnode.example.toml does not describe {missing}"
    unknown = sorted(".".join(path) for path in named - SETTINGS_PATHS)
    assert not unknown, f"deploy/blsnode.example.toml names unknown settings {unknown}"
