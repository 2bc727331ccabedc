"""train on real drawings: the loss falls, the log and checkpoints are complete, resume equals an unbroken
run, early stopping stops."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMALL_CLASSES, tiny_config

from sketchgen import model
from sketchgen.train import train

LOG_KEYS = {"epoch", "train_loss", "val_loss", "lr"}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def quiet(msg: str) -> None:
    pass


def test_loss_falls(tiny_run):
    _, history = tiny_run
    assert len(history) == 3
    train_loss = [r["train_loss"] for r in history]
    assert train_loss == sorted(train_loss, reverse=True) and train_loss[-1] < 0.85 * train_loss[0]
    assert history[-1]["val_loss"] < 0.9 * history[0]["val_loss"]


def test_log_has_one_record_per_epoch(tiny_run):
    out, history = tiny_run
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(LOG_KEYS <= r.keys() for r in records)
    assert records == history
    assert records[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_checkpoints_load_safely_and_record_the_config(tiny_run, name):
    out, history = tiny_run
    raw = torch.load(out / name, map_location="cpu", weights_only=True)
    assert raw["kind"] == "seed" and raw["classes"] == SMALL_CLASSES
    assert raw["train"]["epochs"] == 3 and raw["train"]["batch_size"] == 16 and raw["train"]["lr"] == 1e-3
    assert raw["train"]["early_stop"] == 3 and raw["train"]["lr_patience"] == 2 and raw["train"]["seed"] == 0
    assert raw["config"]["hidden"] == 64 and raw["config"]["embed_dim"] == 8 and raw["config"]["dropout"] == 0.3
    assert len(raw["config"]["lengths"]) == len(SMALL_CLASSES)
    net, ckpt = model.load(out / name)
    assert isinstance(net, model.SketchGenerator) and not net.training
    for k, v in raw["state_dict"].items():
        assert torch.equal(net.state_dict()[k], v)
    if name == "best.pt":
        best = min(history, key=lambda r: r["val_loss"])
        assert ckpt["epoch"] == best["epoch"] and ckpt["val_loss"] == best["val_loss"]


def test_resume_reaches_the_same_weights(small_data, tmp_path):
    """epochs=1 then --resume to epochs=2 against an unbroken epochs=2 run, same seed, CPU: bit for bit."""
    cfg = tiny_config(epochs=2, model_config={"hidden": 16, "embed_dim": 4})
    whole = train(cfg, small_data, tmp_path / "whole", log=quiet)
    train(tiny_config(epochs=1, model_config=cfg.model_config), small_data, tmp_path / "split", log=quiet)
    resumed = train(cfg, small_data, tmp_path / "split", resume=True, log=quiet)

    def strip(history):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]

    assert strip(resumed) == strip(whole)
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert len((tmp_path / "split" / "log.jsonl").read_text().splitlines()) == 2


def test_early_stopping_after_epochs_without_improvement(small_data, tmp_path):
    """With lr 0 the weights never change, so the validation loss never beats epoch 1: stop after 1 + 3."""
    cfg = tiny_config(epochs=10, lr=0.0, model_config={"hidden": 8, "embed_dim": 4})
    messages = []
    history = train(cfg, small_data, tmp_path, log=messages.append)
    assert len(history) == 4
    assert len({r["val_loss"] for r in history}) == 1
    assert any("early stop" in m for m in messages)
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 1
