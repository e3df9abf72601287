"""Bookkeeping: the only package that talks to the database.

Every function takes an explicit ``Session``; callers own the transaction. ``open_database``
builds the engine (SQLite in WAL mode by default, PostgreSQL by URL) and brings the schema
to the newest Alembic revision.
"""

from dicom_node.db.engine import Database, database_error, open_database, open_node_database
from dicom_node.db.models import (
    Destination,
    Dispatch,
    DispatchState,
    Instance,
    Job,
    JobState,
    Output,
    OutputKind,
    Series,
    Study,
)

__all__ = [
    "Database",
    "Destination",
    "Dispatch",
    "DispatchState",
    "Instance",
    "Job",
    "JobState",
    "Output",
    "OutputKind",
    "Series",
    "Study",
    "database_error",
    "open_database",
    "open_node_database",
]
