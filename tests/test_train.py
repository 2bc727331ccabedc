"""train on real drawings: the loss falls, the log and checkpoints are complete, resume equals an unbroken
run, early stopping stops."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import SMALL_CAP, SMALL_CLASSES, ctrl_c_in_step, tiny_config

import sketchgen
from sketchgen import cli
from sketchgen import models as model
from sketchgen.api import SettingError
from sketchgen.models import cells
from sketchgen.runs import train_config
from sketchgen.training import Interrupted, TrainConfig, TrainingError, train, usable
from sketchgen.training.batching import Prefetcher
from sketchgen.training.checkpoints import LOCK, read_last
from sketchgen.training.config import MAX_VALIDATIONS
from sketchgen.training.step import slow_amp


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]

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
    assert net.name == "seed" and not net.training
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


def test_a_step_budget_raised_on_resume_trains_the_steps_it_adds(small_data, tmp_path):
    """`--steps 5` with validations every 250, then `--resume --steps 10`, trained nothing (the rounds were counted
    from step 0: the one round, of 5 steps, was done), and `--steps 5 --eval-every 2` resumed with `--steps 8` stopped
    at 7 (found by a helper walking the README). The rounds go on from where the run is; a budget trained says so."""
    steps = dict(lr_schedule="cosine", warmup=0, model_config={"hidden": 16, "embed_dim": 4})
    said = []
    for every, budgets, validated in ((250, (5, 10), [5, 10]), (2, (5, 8, 8), [2, 4, 5, 7, 8])):
        out = tmp_path / str(every)
        for budget in budgets:
            said.clear()
            history = train(tiny_config(steps=budget, eval_every=every, **steps), small_data, out,
                            resume=out.exists(), log=said.append)
        assert [r["step"] for r in history] == validated
        assert read_last(out / "last.pt")["progress"]["global_step"] == budgets[-1]
    assert "note: the run has trained its budget (--steps 8): nothing more to train; raise it to train on" in said


def test_a_moving_average_is_what_validation_scores_and_best_pt_keeps_and_it_resumes_exactly(small_data, tmp_path):
    """--ema: the average trails the weights; a run stopped and resumed has the same weights and average bit for
    bit; best.pt holds the average the history's best validation scored."""
    cfg = tiny_config(epochs=3, ema=0.9, model_config={"hidden": 16, "embed_dim": 4})
    whole = train(cfg, small_data, tmp_path / "whole", log=quiet)
    train(tiny_config(epochs=1, ema=0.9, model_config=cfg.model_config), small_data, tmp_path / "split", log=quiet)
    first = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["averaged"]
    best_first = model.read(tmp_path / "split" / "best.pt")["state_dict"]  # one validation: best.pt is its average
    assert all(torch.equal(best_first[k], first["module." + k]) for k in best_first)
    resumed = train(cfg, small_data, tmp_path / "split", resume=True, log=quiet)
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in whole]
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True) for run in ("whole", "split"))
    for key in ("state_dict", "averaged"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert int(a["averaged"]["n_averaged"]) == whole[-1]["step"]  # every step averaged in, none skipped
    averaged = {k.removeprefix("module."): v for k, v in a["averaged"].items() if k != "n_averaged"}
    assert averaged.keys() == a["state_dict"].keys()
    assert not all(torch.equal(a["state_dict"][k], averaged[k]) for k in averaged)
    assert model.read(tmp_path / "whole" / "best.pt")["val_loss"] == min(r["val_loss"] for r in whole)
    plain = train(tiny_config(epochs=3, model_config=cfg.model_config), small_data, tmp_path / "plain", log=quiet)
    assert [r["train_loss"] for r in plain] == [r["train_loss"] for r in whole]  # the steps themselves are the same
    assert [r["val_loss"] for r in plain] != [r["val_loss"] for r in whole]


@pytest.mark.parametrize("spoil", ["missing", "shape", "nan", "names", "count", -1, 10**9])
def test_resume_refuses_a_spoiled_average_in_one_line(small_data, tmp_path, spoil):
    cfg = tiny_config(epochs=1, ema=0.9, model_config={"hidden": 16, "embed_dim": 4})
    train(cfg, small_data, tmp_path, log=quiet)
    d = torch.load(tmp_path / "last.pt", weights_only=True)
    name = next(k for k in d["averaged"] if k != "n_averaged")
    if spoil == "missing":
        del d["averaged"]
    elif spoil == "shape":
        d["averaged"][name] = d["averaged"][name][:1]
    elif spoil == "nan":
        d["averaged"][name] = torch.full_like(d["averaged"][name], math.nan)
    elif spoil == "names":
        d["averaged"]["extra"] = d["averaged"].pop(name)
    elif spoil == "count":
        d["averaged"]["n_averaged"] = torch.tensor(0.5)
    else:
        d["averaged"]["n_averaged"] = torch.tensor(spoil)
    torch.save(d, tmp_path / "last.pt")
    with pytest.raises(TrainingError) as error:
        train(tiny_config(epochs=2, ema=0.9, model_config=cfg.model_config), small_data, tmp_path, resume=True,
              log=quiet)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "last.pt") in message and "moving average: " in message


def test_early_stopping_after_epochs_without_improvement(small_data, tmp_path):
    """With lr 0 the weights never change, so the validation loss never beats epoch 1: stop after 1 + 3."""
    cfg = tiny_config(epochs=10, lr=0.0, model_config={"hidden": 8, "embed_dim": 4})
    messages = []
    history = train(cfg, small_data, tmp_path, log=messages.append)
    assert len(history) == 4
    assert len({r["val_loss"] for r in history}) == 1
    assert any("early stop" in m for m in messages)
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 1


def test_batches_built_ahead_are_the_batches_built_in_turn(small_data, tmp_path):
    """The background thread changes when a batch is built, never what it holds: same weights either way."""
    cfg = tiny_config(epochs=1, model_config={"hidden": 8, "embed_dim": 4})
    for depth in (0, 3):
        cfg.prefetch = depth
        train(cfg, small_data, tmp_path / f"prefetch{depth}", log=quiet)
    a, b = (torch.load(tmp_path / f"prefetch{d}" / "last.pt", weights_only=True)["state_dict"] for d in (0, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)

    def build(i):
        if i == 4:
            raise ValueError("drawing 4 is broken")
        return i

    with Prefetcher(build, 0, 9, depth=2) as items:
        got = []
        with pytest.raises(ValueError, match="drawing 4 is broken"):
            for item in items:
                got.append(item)
    assert got == [0, 1, 2, 3]
    stopped = Prefetcher(lambda i: i, 0, 10**9, depth=2)  # a consumer that leaves early stops the thread
    assert next(iter(stopped)) == 0
    stopped.close()
    assert not stopped._thread.is_alive()


def test_a_folder_holding_a_run_needs_resume_or_overwrite(tiny_run, tmp_path, small_data, quickdraw):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    cfg = tiny_config(epochs=1, model_config={"hidden": 8, "embed_dim": 4})
    before = (out / "best.pt").read_bytes()
    with pytest.raises(TrainingError, match=r"holds a run \(best\.pt, last\.pt, log\.jsonl\): pass "
                                            r"--resume to continue it, --overwrite to start again"):
        train(cfg, small_data, out, log=quiet)
    assert (out / "best.pt").read_bytes() == before
    # The library and the command line refuse it before the data is prepared and the run announced ("training seed
    # on 3489 drawings of 5 classes -> runs/seed", then the refusal; found by a helper walking the README).
    said = []
    with pytest.raises(TrainingError, match=r"holds a run \(best\.pt, last\.pt, log\.jsonl\): pass --resume"):
        sketchgen.train(classes=["circle"], model="seed", out=out, data_dir=quickdraw / "simplified",
                        steps=1, log=said.append)
    assert said == []
    (out / ".best.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # what a killed run leaves
    # A user's own: every .*.tmp file was removed, and a folder so named failed the run (an audit's find).
    (out / ".my-draft.tmp").write_text("precious")
    (out / ".log.jsonl.kept.tmp").mkdir()
    notes = []
    train(cfg, small_data, out, overwrite=True, log=notes.append)
    assert any("--overwrite: replacing the run" in n for n in notes)
    assert len(records(out)) == 1 and sorted(p.name for p in out.glob(".*.tmp")) == [".log.jsonl.kept.tmp",
                                                                                       ".my-draft.tmp"]


def test_what_stands_in_a_run_s_files_is_refused_before_the_old_run_is_removed(tiny_run, tmp_path, small_data):
    """Found by an audit: a folder named log.jsonl had --overwrite remove best.pt and last.pt, train, then fail on
    it (both runs lost); a FIFO as best.pt was found by --resume only after a round's training; a hard link as the run's lock had the file it links to overwritten with the lock's line."""
    cfg = tiny_config(epochs=1, model_config={"hidden": 8, "embed_dim": 4})
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    (out / "log.jsonl").unlink()
    (out / "log.jsonl").mkdir()
    before = {name: (out / name).read_bytes() for name in ("best.pt", "last.pt")}
    with pytest.raises(TrainingError, match=rf"^{re.escape(str(out / 'log.jsonl'))} is a folder, where a run keeps "
                                            r"its log.jsonl: move it, or give another --out$"):
        train(cfg, small_data, out, overwrite=True, log=quiet)
    assert {name: (out / name).read_bytes() for name in before} == before
    (out / "log.jsonl").rmdir()
    (out / "best.pt").unlink()
    os.mkfifo(out / "best.pt")  # found by an audit once --resume had trained a round, and again at each try
    with pytest.raises(TrainingError, match=rf"^{re.escape(str(out / 'best.pt'))} is a FIFO, where a run keeps "
                                            r"its best.pt: move it, or give another --out$"):
        train(cfg, small_data, out, resume=True, log=quiet)
    assert (out / "last.pt").read_bytes() == before["last.pt"]
    # A link to a device: the writer refuses it (it would take the device's name away), so --resume trained an epoch
    # and lost it at the save (a review's find, once the writers refused such links); refused first, as a FIFO is.
    (out / "best.pt").unlink()
    (out / "best.pt").symlink_to(os.devnull)
    with pytest.raises(TrainingError, match=rf"^{re.escape(str(out / 'best.pt'))} is a link to a device, where a run "
                                            r"keeps its best.pt: move it, or give another --out$"):
        train(cfg, small_data, out, resume=True, log=quiet)
    assert (out / "last.pt").read_bytes() == before["last.pt"] and (out / "best.pt").is_symlink()
    precious, fresh = tmp_path / "precious.txt", tmp_path / "fresh"
    precious.write_text("precious")
    fresh.mkdir()
    os.link(precious, fresh / LOCK)
    with pytest.raises(OSError, match=r"a file with other names \(hard links\) where sketchgen keeps its own file"):
        train(cfg, small_data, fresh, log=quiet)
    assert precious.read_text() == "precious"


def test_resume_refuses_a_best_pt_that_is_not_the_run_s(tiny_run, tiny_models, tmp_path, small_data):
    """Found by an audit: a run resumed beside another model's best.pt ended by printing it as its result, although
    no validation had improved on it. best.pt must be a checkpoint of the run in last.pt."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    shutil.copy(tiny_models["mdn"], out / "best.pt")
    with pytest.raises(TrainingError, match=rf"^{re.escape(str(out / 'best.pt'))} is not this run's \(a mdn of 5 "
                                            r"classes, where last.pt is a seed of 2\): pass --overwrite"):
        train(tiny_config(epochs=4), small_data, out, resume=True, log=quiet)


@pytest.mark.parametrize("refused, says", [({"max_len": 1}, "no training or validation drawings of at most 1 point: "
                                                           "raise --max-len$"),
                                           ({"fine_tune": "new-classes"}, "needs a checkpoint to start from")])
def test_an_overwrite_refused_before_its_first_checkpoint_leaves_the_old_run_whole(tiny_run, tmp_path, small_data,
                                                                                   refused, says):
    """--overwrite removed the old run as it took the folder, then the new run was refused (every drawing too long,
    nothing to fine-tune from) and the folder was left empty: the old run goes only as the new one writes."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    notes = []
    with pytest.raises(TrainingError, match=says):
        train(tiny_config(epochs=1, **refused), small_data, out, overwrite=True, log=notes.append)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not any("replacing the run" in n for n in notes)


def test_two_trainings_cannot_share_a_folder(small_data, tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".sketchgen-train.lock", "a") as held:
        held.write("sketchgen train (pid 4242 on elsewhere)\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(TrainingError, match=r"in use by sketchgen train \(pid 4242 on elsewhere\)"):
            train(tiny_config(epochs=1), small_data, out, log=quiet)
    assert not (out / "last.pt").exists()


def test_checkpoints_record_the_data_they_were_trained_on(tiny_run, small_data):
    out, _ = tiny_run
    ckpt = model.read(out / "best.pt")
    assert ckpt["data"]["max_per_class"] == SMALL_CAP and ckpt["data"]["seed"] == 0
    assert set(ckpt["data"]["sources"]) == set(SMALL_CLASSES)
    assert ckpt["data"] == small_data.settings


def test_a_run_whose_validation_is_never_finite_fails(small_data, tmp_path):
    with pytest.raises(TrainingError, match="no validation loss was finite"):
        train(tiny_config(epochs=1, lr=1e30, model_config={"hidden": 8, "embed_dim": 4}), small_data, tmp_path,
              log=quiet)
    assert not (tmp_path / "best.pt").exists()


def test_the_learning_rate_follows_the_schedule_asked_for():
    """decay is Sketch-RNN's from step 0 unless warmed up; cosine falls from lr to min_lr over the run's steps."""
    from sketchgen.training import TrainConfig
    from sketchgen.training.optim import learning_rate

    decay = TrainConfig(lr_schedule="decay", lr=1e-3, lr_decay=0.9, min_lr=1e-5)
    assert [learning_rate(decay, s, 100) for s in (0, 2)] == [1e-3, pytest.approx((1e-3 - 1e-5) * 0.81 + 1e-5)]
    cosine = TrainConfig(lr_schedule="cosine", lr=1e-3, min_lr=1e-5, warmup=10)
    rates = [learning_rate(cosine, s, 110) for s in range(111)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == rates[10] == pytest.approx(1e-3)
    assert rates[60] == pytest.approx((1e-3 + 1e-5) / 2) and rates[110] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert learning_rate(TrainConfig(), 5, 100) is None  # plateau follows validation instead


def test_adamw_decays_weight_matrices_only(small_data, tmp_path):
    """Biases, gains and the class embedding are in the group without weight decay; a run with it, stopped mid-way
    (warm-up and cosine rate, AdamW's moments), resumes to the unbroken run's weights exactly."""
    from sketchgen.training.optim import optimizer

    cfg = tiny_config(epochs=2, optimizer="adamw", weight_decay=0.5, lr_schedule="cosine", warmup=3,
                      model_config={"hidden": 16, "embed_dim": 4})
    net = model.build("seed", n_classes=2, hidden=16, embed_dim=4, lengths=[5, 5])
    decayed, kept = optimizer(cfg, net).param_groups
    names = {id(p): n for n, p in net.named_parameters()}
    assert decayed["weight_decay"] == 0.5 and kept["weight_decay"] == 0.0
    assert {names[id(p)] for p in kept["params"]} == {n for n, p in net.named_parameters()
                                                       if p.dim() < 2 or n.startswith("embed")}
    whole = train(cfg, small_data, tmp_path / "whole", log=quiet)
    assert whole[0]["lr"] != whole[1]["lr"]

    def stop_after_the_first_epoch(line: str) -> None:  # as Ctrl-C there: stopped at the next step, mid-schedule
        if line.startswith("epoch 1:"):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as stopped:
        train(cfg, small_data, tmp_path / "split", log=stop_after_the_first_epoch)
    assert not isinstance(stopped.value, Exception)  # Ctrl-C passes a caller's `except Exception` (an audit's find)
    assert str(Interrupted("state in /tmp/a\nb/last.pt")) == "state in /tmp/a\\nb/last.pt"  # one line, as before
    again = train(cfg, small_data, tmp_path / "split", resume=True, log=quiet)
    assert [r["val_loss"] for r in again] == [r["val_loss"] for r in whole]
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True) for run in ("whole", "split"))
    assert all(torch.equal(w, b["state_dict"][k]) for k, w in a["state_dict"].items())
    moments = [(s_a, b["optimizer"]["state"][i]) for i, s_a in a["optimizer"]["state"].items()]
    assert moments and all(torch.equal(x[k], y[k]) for x, y in moments for k in ("exp_avg", "exp_avg_sq"))


def test_what_a_resume_may_change_it_changes(small_data, tmp_path, monkeypatch):
    """Found by an audit: --lr-patience changed on --resume was recorded but the schedule's saved patience
    overruled it; a run stopped mid-round and resumed with --steps below where it was was told its last.pt was
    damaged and to --overwrite it (the whole run)."""
    small = {"hidden": 8, "embed_dim": 4}
    out = tmp_path / "plateau"
    train(tiny_config(steps=4, eval_every=2, lr_schedule="plateau", model_config=small), small_data, out, log=quiet)
    train(tiny_config(steps=6, eval_every=2, lr_schedule="plateau", lr_patience=0, model_config=small), small_data, out,
          resume=True, log=quiet)
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["train"]["lr_patience"] == 0 == last["scheduler"]["patience"]

    ctrl_c_in_step(monkeypatch, 6)  # the seventh step, round 2's third of 4, is the last
    cfg = tiny_config(steps=8, eval_every=4, model_config=small)
    with pytest.raises(Interrupted, match="at step 3 \\(step 7 of the run\\)"):
        train(cfg, small_data, tmp_path / "stopped", log=quiet)
    with pytest.raises(TrainingError, match=f"^the run in {re.escape(str(tmp_path / 'stopped'))} is at step 7, past "
                                            "--steps 5: raise --steps to go on with it$"):
        train(replace(cfg, steps=5), small_data, tmp_path / "stopped", resume=True, log=quiet)
    assert len(train(cfg, small_data, tmp_path / "stopped", resume=True, log=quiet)) == 2


def test_a_run_trains_in_a_thread_other_than_the_main_one(small_data, tmp_path):
    """A web app's or a GUI's worker thread: signal handlers can be set in the main thread alone, and the run
    failed with a bare ValueError once its data was prepared (an audit's find). It trains, without Ctrl-C's flag."""
    done = []
    cfg = tiny_config(steps=2, eval_every=2, model_config={"hidden": 8, "embed_dim": 4})
    worker = threading.Thread(target=lambda: done.append(train(cfg, small_data, tmp_path / "run", log=quiet)))
    worker.start()
    worker.join(timeout=120)
    assert len(done) == 1 and done[0][-1]["step"] == 2 and (tmp_path / "run" / "best.pt").is_file()


def test_a_class_left_without_a_training_drawing_is_named_in_one_line(quickdraw, tmp_path):
    """All of a class's drawings longer than --max-len, or a Sketch-RNN file with an empty train array: refused
    before anything is built from the classes' statistics, naming the class and why."""
    from sketchgen.data import prepare
    from sketchgen.npz import write_npz

    data = prepare(["circle", "The Mona Lisa"], quickdraw / "simplified", seed=0)
    train_idx = data.indices("train")
    shortest = int(data.lengths()[train_idx][data.labels[train_idx] == 1].min())
    cfg = tiny_config(max_len=shortest - 1, model_config={"hidden": 8, "embed_dim": 4})
    with pytest.raises(TrainingError, match=r"^no training drawing of 1 of the classes: 'The Mona Lisa' \(its \d+ are "
                                            rf"all longer than {shortest - 1} points\); raise --max-len"):
        train(cfg, data, tmp_path / "long", log=quiet)
    circles = [data.stroke3(i) for i in train_idx[data.labels[train_idx] == 0]]
    write_npz(tmp_path / "npz" / "zigzag.npz", {"train": [], "valid": circles[:3], "test": circles[3:6]})
    write_npz(tmp_path / "npz" / "circle.npz", {"train": circles[:10], "valid": circles[10:13], "test": circles[13:16]})
    empty = prepare(["circle", "zigzag"], tmp_path / "npz", seed=0)
    with pytest.raises(TrainingError, match="'zigzag' \\(none in its training split\\)"):
        train(tiny_config(model_config={"hidden": 8, "embed_dim": 4}), empty, tmp_path / "empty", log=quiet)


def test_a_finished_run_leaves_no_lock_naming_a_dead_process(tiny_run, small_data, tmp_path):
    from sketchgen.training.checkpoints import LOCK

    out, _ = tiny_run
    assert not (out / LOCK).exists()
    with pytest.raises(TrainingError):  # refused runs let go of it too
        train(tiny_config(epochs=1), small_data, out, log=quiet)
    assert not (out / LOCK).exists()


@pytest.mark.parametrize("val_weights", ["balance", "pooled"])
def test_validation_weighs_the_classes_as_asked(small_data, tmp_path, val_weights):
    """--val-weights balance: each class's mean loss, weighed as --balance draws the classes; pooled: every
    validation drawing alike (the larger classes decide when to stop). The logged loss is the one asked for."""
    import numpy as np

    from sketchgen.training.loop import dataset_loss, usable

    cfg = tiny_config(steps=2, eval_every=2, balance="classes", val_weights=val_weights)
    history = train(cfg, small_data, tmp_path / "run", log=quiet)
    net, _ = model.load(tmp_path / "run" / "best.pt")
    valid = usable(small_data, "valid", cfg.max_len)
    each = {w: dataset_loss(net, small_data, valid, cfg.batch_size, class_weights=weights)[0]
            for w, weights in (("balance", np.ones(len(SMALL_CLASSES))), ("pooled", None))}
    assert history[-1]["val_loss"] == pytest.approx(each[val_weights], rel=1e-6)
    assert each["balance"] != pytest.approx(each["pooled"], rel=1e-3)


def _train_argv(quickdraw, out, *flags) -> list[str]:
    """``sketchgen train`` of a tiny mdn from random weights on two real classes."""
    return ["train", "--model", "mdn", "--classes", "apple", "square", "--data-dir", str(quickdraw / "simplified"),
            "--init", "none", "--hidden", "16", "--out", str(out), *flags]


def test_resuming_a_run_as_another_model_is_one_line(quickdraw, tmp_path, capsys):
    """An audit's find: ``--resume --model mdn`` of a vae run built the mdn's config from the vae's settings, a
    TypeError traceback (``unexpected keyword argument 'encoder_hidden'``); now refused before anything is read."""
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "vae", "--classes", "apple", "square", "--data-dir",
                     str(quickdraw / "simplified"), "--init", "none", "--hidden", "16", "--encoder-hidden", "8",
                     "--latent-size", "4", "--steps", "2", "--eval-every", "1", "--batch-size", "8", "--out",
                     str(out)]) == 0
    capsys.readouterr()
    for other in ("mdn", "transformer", "seed"):
        assert cli.main(["train", "--out", str(out), "--resume", "--model", other]) == 1
        assert capsys.readouterr().err == (f"sketchgen: error: --model {other}: the run to resume trains a vae model; "
                                           "leave --model out to resume it, or pass --overwrite to start again\n")


def test_a_run_of_the_most_validations_allowed_writes_checkpoints_that_read_back(quickdraw, tmp_path):
    """Each validation adds a record to the history in best.pt and last.pt, and their reader bounds a pickle's
    objects: MAX_VALIDATIONS records of a run of all 345 classes (the vae's, whose records hold two loss terms
    besides a share per class) still read back, so no run the settings allow writes a checkpoint it cannot resume."""
    import pickletools
    import zipfile

    from sketchgen.models.checkpoint import MAX_PICKLE_OPS

    out = tmp_path / "run"
    assert cli.main(["train", "--model", "vae", "--classes", "all", "--data-dir", str(quickdraw / "simplified"),
                     "--init", "none", "--hidden", "16", "--encoder-hidden", "8", "--latent-size", "4", "--steps", "2",
                     "--eval-every", "1", "--batch-size", "8", "--out", str(out)]) == 0
    last, best = (torch.load(out / name, weights_only=True) for name in ("last.pt", "best.pt"))
    history = last["progress"]["history"]
    assert len(history) == 2 and len(history[-1]["class_share"]) == 345 and "val_kl" in history[-1]
    best_loss = min(r["val_loss"] for r in history)
    for i in range(len(history), MAX_VALIDATIONS):  # as the loop writes them: each its own dicts; each the best
        best_loss -= 1e-4
        history.append({**history[-1], "epoch": history[-1]["epoch"] + 0.01, "step": i + 1, "val_loss": best_loss,
                        "class_share": dict(history[-1]["class_share"])})
    last["progress"].update(round=MAX_VALIDATIONS, global_step=MAX_VALIDATIONS, best=best_loss, bad_rounds=0)
    model.save(out / "last.pt", last)
    model.save(out / "best.pt", {**best, "history": history, "round": MAX_VALIDATIONS, "step": MAX_VALIDATIONS,
                                 "val_loss": best_loss})
    assert len(read_last(out / "last.pt")["progress"]["history"]) == MAX_VALIDATIONS
    assert len(model.read(out / "best.pt")["history"]) == MAX_VALIDATIONS
    with zipfile.ZipFile(out / "last.pt") as z:  # with room to spare (MAX_VALIDATIONS's comment)
        objects = sum(1 for _ in pickletools.genops(z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))))
    assert objects < 0.8 * MAX_PICKLE_OPS


def test_a_run_validating_more_often_than_its_checkpoints_hold_is_refused(quickdraw, small_data, tmp_path, capsys):
    """Refused before any drawing is read, as the flags, the library or a resumed run ask for it; an epoch's worth
    of steps (--eval-every 0) as soon as the data says how many that is, before the first step."""
    out = tmp_path / "run"
    assert cli.main(_train_argv(quickdraw, out, "--steps", "1000000", "--eval-every", "250")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --steps 1000000 with --eval-every 250 makes 4,000 validations, more than the 2,000 the "
        "history of a checkpoint may hold: raise --eval-every or lower --steps")
    assert not out.exists()
    with pytest.raises(TrainingError, match=f"^--epochs {MAX_VALIDATIONS + 1} makes 2,001 validations, .*: lower "
                                            "--epochs$"):
        sketchgen.train(["apple"], "mdn", out, data_dir=quickdraw / "simplified", init="none",
                        epochs=MAX_VALIDATIONS + 1)
    TrainConfig(steps=MAX_VALIDATIONS, eval_every=1)  # the bound itself is allowed

    assert cli.main(_train_argv(quickdraw, out, "--steps", "2", "--eval-every", "1")) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", str(out), "--steps", str(MAX_VALIDATIONS + 1)]) == 1
    assert "--steps 2001 with --eval-every 1 makes 2,001 validations" in capsys.readouterr().err
    assert len(read_last(out / "last.pt")["progress"]["history"]) == 2  # the run is as it was

    per_epoch = math.ceil(len(usable(small_data, "train", 250)) / 16)  # tiny_config's batches
    with pytest.raises(TrainingError, match=rf"^--steps {per_epoch * 2001} with --eval-every 0 \(an epoch, "
                                            rf"{per_epoch} steps\) makes 2,001 validations"):
        train(tiny_config(steps=per_epoch * (MAX_VALIDATIONS + 1), eval_every=0), small_data, tmp_path / "e0",
              log=quiet)
    assert not (tmp_path / "e0").exists()
    # A run of more classes of its own than Quick, Draw!'s 345 has room for proportionally fewer.
    with pytest.raises(TrainingError, match="more than the 1,000 the history of a checkpoint of 690 classes"):
        TrainConfig(steps=1001, eval_every=1).rounds(per_epoch=1, n_classes=690)


def test_a_warmup_that_would_do_nothing_or_fill_the_run_is_refused(quickdraw, tmp_path, capsys):
    """--warmup under plateau was ignored without a word, and one as long as the run never let the rate reach --lr:
    both refused before any drawing is read. A model's own default warm-up (the Transformer's) is not a request,
    so another schedule just leaves it out."""
    out = tmp_path / "run"
    assert cli.main(_train_argv(quickdraw, out, "--steps", "40", "--lr-schedule", "plateau", "--warmup", "10")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --warmup 10 does nothing under the plateau schedule, which follows the validation loss: "
        "pass --lr-schedule decay or cosine, or leave --warmup out")
    assert cli.main(_train_argv(quickdraw, out, "--steps", "40", "--lr-schedule", "cosine", "--warmup", "40")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --warmup 40 is the whole run (--steps 40): the rate would never reach --lr; lower --warmup")
    # A round of a billion steps was planned whole: "out of memory (64.0 GB asked for)" (an audit's find)
    assert cli.main(_train_argv(quickdraw, out, "--steps", "1000000000", "--eval-every", "1000000000")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --eval-every 1,000,000,000 steps of --batch-size 100 make rounds of more than the 10,000,000 "
        "drawings whose plan a round holds in memory: lower --eval-every")
    assert cli.main(_train_argv(quickdraw, out, "--epochs", "2", "--eval-every", "2")) == 1  # was ignored (an audit)
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --eval-every 2 does nothing with an epoch budget (--epochs 2), which validates after each "
        "epoch: pass --steps, or leave --eval-every out")
    assert not out.exists()
    with pytest.raises(SettingError, match="^--warmup 5 does nothing under the plateau schedule"):
        sketchgen.train(["apple"], "seed", out, data_dir=quickdraw / "simplified", warmup=5)
    # An epoch budget's steps are known once the data is: a warm-up as long is said, not refused (the
    # Transformer's own 300 steps on a few drawings would be), and the run goes on.
    assert cli.main(_train_argv(quickdraw, out, "--epochs", "1", "--batch-size", "16", "--lr-schedule", "cosine",
                                "--warmup", "1000")) == 0
    assert "note: the warm-up of 1,000 steps is the whole run of 3: the rate rises throughout and never reaches " \
           "0.001 (lower --warmup, or train for longer)" in capsys.readouterr().err
    assert train_config("transformer", None, 0, lr_schedule="plateau").warmup == 300  # its default, moot there
    assert train_config("mdn", None, 0, steps=40, warmup=39).warmup == 39
    assert train_config("mdn", None, 0, lr_schedule="plateau", warmup=0).warmup == 0  # no warm-up: what plateau does


def test_numpy_numbers_as_training_settings_train_as_plain_ones(quickdraw, tmp_path):
    """A seed or cap from NumPy crashed the run as it wrote its settings (int64 is not JSON); a step count or
    size from NumPy was refused as "a int64, not a int". Each is now the plain number it is."""
    runs = {}
    for name, num, real in (("plain", int, float), ("numpy", np.int64, np.float32)):
        runs[name] = sketchgen.train(["apple", "square"], "mdn", tmp_path / name, data_dir=quickdraw / "simplified",
                                     init="none", seed=num(1), max_per_class=num(40), steps=num(2), eval_every=num(1),
                                     batch_size=num(8), hidden=num(16), lr=real(0.5), log=lambda msg: None)
    saved = [model.read(run.best) for run in runs.values()]
    assert saved[0]["train"] == saved[1]["train"] and saved[0]["data"] == saved[1]["data"]
    assert all(torch.equal(w, saved[0]["state_dict"][k]) for k, w in saved[1]["state_dict"].items())


def test_a_lowest_rate_above_the_rate_is_refused(quickdraw, tmp_path, capsys):
    """decay and cosine would raise the rate to --min-lr (up to a diverging run that still wrote a best.pt): refused
    from the flags, the library and a resumed run; plateau, which never reads --min-lr, is left alone."""
    out = tmp_path / "run"
    assert cli.main(_train_argv(quickdraw, out, "--steps", "40", "--eval-every", "5", "--lr", "0.001", "--min-lr",
                                "10", "--lr-schedule", "decay", "--lr-decay", "0.5")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sketchgen: error: --min-lr 10 is above --lr 0.001: the decay schedule would raise the rate to it; lower "
        "--min-lr or raise --lr")
    assert not out.exists()
    with pytest.raises(TrainingError, match="^--min-lr 0.01 is above --lr 0.001: the cosine schedule"):
        sketchgen.train(["apple"], "mdn", out, data_dir=quickdraw / "simplified", init="none", lr_schedule="cosine",
                        lr=1e-3, min_lr=1e-2)
    TrainConfig(lr_schedule="plateau", lr=1e-3, min_lr=1e-2)

    assert cli.main(_train_argv(quickdraw, out, "--steps", "2", "--eval-every", "1", "--min-lr", "1e-5")) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", str(out), "--lr", "1e-6"]) == 1
    assert "--min-lr 1e-05 is above --lr 1e-06" in capsys.readouterr().err


def test_asking_onednn_for_a_bf16_lstm_leaves_the_random_state_as_it_was():
    """The question is asked on the first --amp step: a run's weights must not depend on whether it was."""
    before = torch.random.get_rng_state()
    cells.onednn_lstm_in_bf16.__wrapped__()
    assert torch.equal(torch.random.get_rng_state(), before)


def test_amp_on_a_cpu_without_bf16_instructions_is_said_to_be_emulated(quickdraw, tmp_path, capsys, monkeypatch):
    """bf16 is fast only on CPUs with AVX512_BF16 or AMX; elsewhere --amp trains, with a note why it is slow.
    The CPU is what is faked here: torch's report of its instruction sets."""
    out = tmp_path / "run"
    note = "note: --amp on a CPU that reports no bf16 instructions"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert cli.main(_train_argv(quickdraw, out, "--epochs", "1", "--batch-size", "16", "--amp")) == 0
    assert (note in capsys.readouterr().err) is not native
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False)
    assert cli.main(_train_argv(quickdraw, out, "--epochs", "1", "--batch-size", "16", "--amp", "--overwrite")) == 0
    assert note in capsys.readouterr().err
    assert not slow_amp("cuda")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the report claims nothing
    assert not slow_amp("cpu")
