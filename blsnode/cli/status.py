"""``blsnode status``: counts, states, free disk and queue depths."""

from __future__ import annotations

from typing import Any

import click

from blsnode.cli.context import emit, json_option, pass_settings
from blsnode.cli.database import command_database
from dicom_node.node_report import node_status
from dicom_node.queue.broker import TaskSender
from dicom_node.settings import Settings


@click.command()
@json_option
@pass_settings
def status(settings: Settings, as_json: bool) -> None:
    """Instances stored, jobs and dispatches by state, free disk, queue depths."""
    with command_database(settings) as database:
        sender = TaskSender(settings)
        try:
            report = node_status(settings, database, sender)
        finally:
            sender.close()
    emit(report, as_json, _as_text)


def _as_text(report: dict[str, Any]) -> str:
    def states(counts: dict[str, int]) -> str:
        return ", ".join(f"{state} {count}" for state, count in counts.items())

    queues = report["queues"]
    queue_text = (
        ", ".join(f"{name} {depth}" for name, depth in queues.items())
        if queues is not None
        else f"unknown ({report['broker']['error']})"
    )
    accepting = "accepting" if report["accepting_instances"] else "REFUSING (disk guard)"
    return "\n".join(
        [
            f"instances   {report['instances']} in {report['series']} series, "
            f"{report['studies']} studies",
            f"jobs        {states(report['jobs'])}",
            f"dispatches  {states(report['dispatches'])}",
            f"disk free   {report['disk_free_bytes'] / 1e9:.1f} GB ({accepting})",
            f"queues      {queue_text}",
            f"database    {report['database']['url']}",
        ]
    )
