"""One provenance for every trainer: source commit and its dirty marker, command, data digest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click
from click.testing import CliRunner

from trainer.model_card import recorded_split
from trainer.provenance import DIRTY, files_digest, invocation, module_invocation, source_commit


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _repository(root: Path) -> str:
    _git(root, "init", "-q")
    (root / "code.py").write_text("x = 1\n")
    _git(root, "add", "code.py")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    return _git(root, "rev-parse", "HEAD")


def test_a_clean_tree_gives_its_commit_and_tests_do_not_dirty_it(tmp_path: Path) -> None:
    commit = _repository(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_new.py").write_text("")
    assert source_commit(tmp_path) == commit


def test_changed_or_new_code_marks_the_commit_dirty(tmp_path: Path) -> None:
    commit = _repository(tmp_path)
    (tmp_path / "new_module.py").write_text("")
    assert source_commit(tmp_path) == commit + DIRTY
    (tmp_path / "new_module.py").unlink()
    (tmp_path / "code.py").write_text("x = 2\n")
    assert source_commit(tmp_path) == commit + DIRTY


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    assert source_commit(tmp_path) is None


def test_a_trainer_command_is_rebuilt_from_its_options_without_defaults() -> None:
    @click.command()
    @click.option("--out")
    @click.option("--epochs", type=int, default=40)
    @click.option("--tiny", is_flag=True)
    def main(out: str, epochs: int, tiny: bool) -> None:
        click.echo(module_invocation(click.get_current_context()))

    result = CliRunner().invoke(main, ["--out", "a b", "--epochs", "40", "--tiny"])
    assert result.output.strip() == f"python -m {__name__} --out 'a b' --tiny"


def test_a_command_keeps_its_arguments_before_its_options() -> None:
    @click.command()
    @click.argument("checkpoint")
    @click.argument("name")
    @click.option("--note")
    def export(checkpoint: str, name: str, note: str | None) -> None:
        click.echo(invocation(click.get_current_context(), "blsnode models export"))

    result = CliRunner().invoke(export, ["--note", "why", "runs/a b/best.pt", "blsgan-cpu"])
    assert result.output.strip() == (
        "blsnode models export 'runs/a b/best.pt' blsgan-cpu --note why"
    )


def test_the_data_digest_depends_on_contents_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"1")
    (tmp_path / "b.png").write_bytes(b"2")
    first = files_digest(tmp_path, [tmp_path / "a.png", tmp_path / "b.png"])
    assert first == files_digest(tmp_path, [tmp_path / "b.png", tmp_path / "a.png"])
    (tmp_path / "b.png").write_bytes(b"3")
    assert files_digest(tmp_path, [tmp_path / "a.png", tmp_path / "b.png"]) != first


def test_the_split_is_read_from_both_metadata_layouts() -> None:
    split = {"by": "case", "val_cases": ["a"]}
    assert recorded_split({"data": {"digest": "d", "split": split}}) == split
    assert recorded_split({"data": "../shared/data/mcp_joints", "split": split}) == split
    assert recorded_split({"training": {}}) == {}
