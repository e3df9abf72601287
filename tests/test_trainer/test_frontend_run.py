"""The run scaffolding both front-end trainers share: resume, log, best checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from blsgan_core.checkpoint import load_checkpoint, write_payload
from blsgan_core.networks.unet import UNetConfig
from blsgan_core.segment.model import Segmenter, SegmenterConfig
from trainer.frontend import run
from trainer.frontend.run import RunOptions
from trainer.state import STATE_FILE, load_training_state

TINY = SegmenterConfig(
    unet=UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=1, max_channels=8),
    input_size=16,
)


def _options(out: Path, epochs: int) -> RunOptions:
    return RunOptions(
        data_dir=out,
        out_dir=out,
        epochs=epochs,
        lr=1e-3,
        seed=0,
        split_seed=0,
        eval_every=1,
        threads=1,
        tiny=True,
        limit_images=0,
        note="",
        export_path=None,
        device="cpu",
        name=None,
    )


def _metadata(command: str) -> dict[str, Any]:
    return {"training": {"command": command}, "data": {"digest": "d"}}


def _losses(
    model: nn.Module, steps: int
) -> Callable[[np.random.Generator], Iterator[dict[str, torch.Tensor]]]:
    def epoch(rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(steps):
            x = torch.from_numpy(rng.random((2, 1, 16, 16), dtype=np.float32))
            out = model(x)
            yield {"loss_a": out.square().mean(), "loss_b": out.abs().mean()}

    return epoch


def test_train_resumes_logs_each_term_and_keeps_the_best(tmp_path: Path) -> None:
    scores = iter([3.0, 1.0, 2.0])
    model = Segmenter(TINY)

    def validate() -> tuple[dict, float]:
        score = next(scores)
        return {"score": score}, score

    run.train(_options(tmp_path, 1), "toy", model, 2, _losses(model, 2), validate, _metadata("a"))
    resumed = Segmenter(TINY)
    options = _options(tmp_path, 3)
    run.train(options, "toy", resumed, 2, _losses(resumed, 2), validate, _metadata("b"))
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]  # epoch 1 ran once
    assert [r["step"] for r in log] == [2, 4, 6]  # the schedule went on where it stopped
    assert all(np.isfinite(r["loss_a"]) and np.isfinite(r["loss_b"]) for r in log)
    best = load_checkpoint(tmp_path / "best.pt", expected_kind="segmenter")
    assert best.version == "toy-e2" and best.metadata["metrics"] == {"score": 1.0}
    assert best.metadata["training"] == {"command": "a", "resumed_by": ["b"], "epochs": 2}
    assert best.metadata["data"] == {"digest": "d"}
    assert load_checkpoint(tmp_path / "last.pt").version == "toy-e3"
    state = load_training_state(tmp_path / STATE_FILE)
    assert state.completed_epochs == 3 and state.best == {"epoch": 2, "score": 1.0}


def test_train_rejects_a_network_without_a_checkpoint(tmp_path: Path) -> None:
    model = nn.Conv2d(1, 1, 1)
    with pytest.raises(TypeError, match="Conv2d"):
        run.train(_options(tmp_path, 1), "toy", model, 1, _losses(model, 1), lambda: ({}, 0.0), {})


def test_a_run_saved_in_the_old_front_end_format_resumes_at_its_next_epoch(
    tmp_path: Path,
) -> None:
    model = Segmenter(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    old = {"epoch": 1, "step": 2, "best": 3.0, "best_epoch": 1, "history": [{"epoch": 1}]}
    write_payload(
        tmp_path / STATE_FILE,
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": old},
    )
    resumed = Segmenter(TINY)
    run.train(
        _options(tmp_path, 2),
        "toy",
        resumed,
        2,
        _losses(resumed, 2),
        lambda: ({}, 5.0),
        _metadata("b"),
    )
    state = load_training_state(tmp_path / STATE_FILE)
    assert [row["epoch"] for row in state.history] == [1, 2]
    assert state.history[-1]["step"] == 4
    assert state.best == {"epoch": 1, "score": 3.0}  # 5.0 is worse: best.pt not written
    assert not (tmp_path / "best.pt").exists()
    assert state.extra["training"] == {"command": "b", "resumed_by": ["b"]}
