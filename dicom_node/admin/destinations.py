"""Destinations from the command line: add, remove, list, C-ECHO."""

from __future__ import annotations

from typing import Any

from dicom_node.db import Database
from dicom_node.db import destinations as destination_rows
from dicom_node.send.destinations import all_destinations, echo, find_destination
from dicom_node.settings import DestinationSettings, Settings


def add(settings: Settings, database: Database, destination: DestinationSettings) -> dict[str, Any]:
    """Store a destination; names must be unique across the settings file and the database."""
    if any(d.name == destination.name for d in settings.destinations):
        raise ValueError(f"destination {destination.name!r} is defined in the settings file")
    with database.sessions.begin() as session:
        destination_rows.add_destination(session, destination)
    return {"added": destination.model_dump(mode="json")}


def remove(settings: Settings, database: Database, name: str) -> dict[str, Any]:
    """Delete a destination added from the command line."""
    if any(d.name == name for d in settings.destinations):
        raise ValueError(f"destination {name!r} is defined in the settings file; edit it there")
    with database.sessions.begin() as session:
        if not destination_rows.remove_destination(session, name):
            raise ValueError(f"no destination called {name!r}")
    return {"removed": name}


def listing(settings: Settings, database: Database) -> dict[str, Any]:
    """Every destination and where it is defined."""
    configured = {d.name for d in settings.destinations}
    with database.reader() as session:
        destinations = all_destinations(settings, session)
    return {
        "destinations": [
            {**d.model_dump(mode="json"), "source": "settings" if d.name in configured else "cli"}
            for d in destinations
        ]
    }


def echo_destination(settings: Settings, database: Database, name: str) -> dict[str, Any]:
    """C-ECHO the destination called ``name``."""
    with database.reader() as session:
        destination = find_destination(settings, session, name)
    if destination is None:
        raise ValueError(f"no destination called {name!r}")
    result = echo(settings, destination)
    return {
        "destination": name,
        "ok": result.ok,
        "status": result.status,
        "seconds": round(result.seconds, 4),
        "error": result.error,
    }
