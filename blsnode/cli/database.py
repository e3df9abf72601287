"""The database for one command: opened (and migrated) on entry, closed on exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import SQLAlchemyError

from dicom_node.db import Database, database_error, open_node_database
from dicom_node.settings import Settings, mask_url


@contextmanager
def command_database(settings: Settings) -> Iterator[Database]:
    """Open the node's database; a connection failure is a clear error, not a trace."""
    try:
        database = open_node_database(settings)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"cannot open the database {mask_url(settings.database_url)}: {database_error(error)}"
        ) from error
    try:
        yield database
    finally:
        database.dispose()
