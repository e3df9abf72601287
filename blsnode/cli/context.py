"""What every ``blsnode`` command shares: the global options, the settings, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from pydantic import ValidationError

from dicom_node.logging_setup import configure_logging
from dicom_node.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CliContext:
    """Global options of one invocation; settings are built once, on first use."""

    config_file: Path | None = None
    data_dir: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        """The effective settings; a bad file or value becomes a usage error, not a trace."""
        if self._settings is None:
            try:
                self._settings = load_settings(
                    self.config_file, data_dir=self.data_dir, **overrides
                )
            except (ValueError, ValidationError) as error:
                raise click.UsageError(f"invalid settings: {error}") from error
        return self._settings


def pass_settings(
    function: Callable[Concatenate[Settings, P], R],
) -> Callable[P, R]:
    """Decorate a command so it receives the effective settings as first argument.

    Commands that only report log to stderr alone; long-running ones configure file
    logging themselves.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context().find_object(CliContext) or CliContext()
        settings = ctx.settings()
        configure_logging(settings.logging.model_copy(update={"to_file": False}))
        return function(settings, *args, **kwargs)

    return wrapper


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout."
)


def emit(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print ``data`` as one JSON object, or as the text ``render`` makes of it."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        click.echo(render(data))


@contextmanager
def exit_on_value_error() -> Iterator[None]:
    """A ``ValueError`` inside the block ends the command with its message (exit status 1).

    The plain functions behind commands refuse bad input (an unknown name, an unusable
    file) with a ``ValueError`` that names it: the user sees that sentence, not a trace.
    """
    try:
        yield
    except ValueError as error:
        raise click.ClickException(str(error)) from error
