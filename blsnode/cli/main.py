"""The ``blsnode`` command: global options and lazily loaded subcommands.

Each subcommand is a module of ``blsnode.cli``, imported only when invoked, so
``blsnode status`` never loads torch and ``blsnode --help`` stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from blsnode.cli.context import CliContext

# name -> "module:attribute" of a click command in this package.
COMMANDS: dict[str, str] = {
    "serve": "blsnode.cli.serve:serve",
    "worker": "blsnode.cli.worker:worker",
    "status": "blsnode.cli.status:status",
    "jobs": "blsnode.cli.jobs:jobs",
    "destinations": "blsnode.cli.destinations:destinations",
    "purge": "blsnode.cli.purge:purge",
    "process": "blsnode.cli.process:process",
    "locate": "blsnode.cli.locate:locate",
    "separate": "blsnode.cli.separate:separate",
    "train": "blsnode.cli.train:train",
    "evaluate": "blsnode.cli.evaluate:evaluate",
    "models": "blsnode.cli.models:models",
    "config": "blsnode.cli.config:config",
    "import-image": "blsnode.cli.import_image:import_image",
    "results": "blsnode.cli.results:results",
    "users": "blsnode.cli.users:users",
}

# One line per command for ``blsnode --help``, without importing the command's module.
SUMMARIES: dict[str, str] = {
    "serve": "Run the node: DICOM listener, embedded worker, health and metrics.",
    "worker": "Run a processing worker (CPU or GPU) that takes jobs from the broker.",
    "status": "Counts of instances, jobs, dispatches, queue depths and free disk.",
    "jobs": "List, inspect and retry processing jobs.",
    "destinations": "Add, remove, list and C-ECHO the DICOM destinations results go to.",
    "purge": "Delete stored instances and bookkeeping older than the retention period.",
    "process": "Run the whole pipeline offline on one DICOM file.",
    "locate": "Find the hands and MCP joints in a radiograph.",
    "separate": "Separate the two bones of a joint crop (or of a manifest's joints) into layers.",
    "train": "Train or fine-tune models (two-phase BLS-GAN training).",
    "evaluate": "Measure separation, localisation, segmentation or JSN registration.",
    "models": "List, inspect and promote trained models.",
    "config": "Show the effective settings.",
    "import-image": "Wrap a hand image file (PNG, JPEG) as a DX radiograph to send.",
    "results": "Export per-joint measurements (joint space width, overlap) as CSV or JSON.",
    "users": "Add, remove and list the users of the web dashboard.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BLSNODE_CONFIG",
    help="Settings file (TOML or YAML). Environment: BLSNODE_CONFIG.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="BLSNODE_DATA_DIR",
    help="Folder of the database, spool and logs. Environment: BLSNODE_DATA_DIR.",
)
@click.version_option(package_name="blsgan-node")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, data_dir: Path | None) -> None:
    """blsgan-node: separate overlapping MCP joint bones in hand radiographs.

    A DICOM node that receives hand radiographs, separates the two bones of every MCP
    joint with BLS-GAN, and sends Segmentation, Secondary Capture and Structured Report
    objects back to PACS and viewers. Settings come from defaults, then --config FILE,
    then BLSNODE_* environment variables, then command-line flags.
    """
    ctx.obj = CliContext(config_file=config_file, data_dir=data_dir)


def main() -> None:
    """Console entry point."""
    cli(prog_name="blsnode")


if __name__ == "__main__":
    main()
