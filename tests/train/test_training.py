import json

import pytest
import torch

from harmcli.data.composites import make_composites
from harmcli.train.config import resolve_config
from harmcli.train.loop import train
from harmcli.weights import load_weights, read_metadata
from tests.data.test_make_composites import write_source


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    import numpy as np

    root = tmp_path_factory.mktemp("train")
    src = write_source(root / "src", np.random.default_rng(5), count=8, size=(48, 48))
    make_composites(src, root / "data", modes=("real", "retouch"), seed=0, val_fraction=0.25)
    return root / "data"


def _config(**overrides):
    base = dict(max_steps=4, batch_size=2, size=32, val_every=2, checkpoint_every=2, adversarial_start=0,
                pretrained_backbone=False, warmup_steps=0, max_minutes=None, threads=1)
    base.update(overrides)
    return resolve_config("lite", **base)


def test_few_steps_train_resume_and_export(tiny_data, tmp_path):
    run = tmp_path / "run"
    events = []
    first = train([tiny_data], run, _config(), on_event=lambda kind, rec: events.append((kind, rec)))
    assert first["step"] == 4
    steps = [rec for kind, rec in events if kind == "step"]
    for rec in steps:
        for key, value in rec.items():
            if key.startswith("loss_"):
                assert torch.isfinite(torch.tensor(value)), (key, value)
    assert any("loss_l1" in r for r in steps) and any("loss_d_fake" in r for r in steps)
    # Weights moved away from the identity initialisation.
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["model"]["curves_head.mlp.2.weight"].abs().sum() > 0
    # Exported weights load as a model; the log is JSONL.
    model = load_weights(run / "best.safetensors")
    assert model.config.name == "lite"
    assert read_metadata(run / "best.safetensors")["info"]["recipe"]["size"] == 32
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(line.get("event") == "val" for line in lines)

    # Started again with a higher step limit, it resumes from the checkpoint.
    events.clear()
    second = train([tiny_data], run, _config(max_steps=6), on_event=lambda kind, rec: events.append((kind, rec)))
    assert ("resume", {"step": 4, "checkpoint": str(run / "checkpoint.pt")}) in events
    assert second["step"] == 6
    first_step = next(rec for kind, rec in events if kind == "step")
    assert first_step["step"] == 5


def test_supervised_only(tiny_data, tmp_path):
    result = train([tiny_data], tmp_path / "run", _config(adversarial=False, max_steps=2))
    assert result["step"] == 2
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all("loss_d_fake" not in line for line in lines)


def test_log_holds_every_step_even_below_the_flush_interval(tiny_data, tmp_path):
    train([tiny_data], tmp_path / "run", _config(max_steps=3, val_every=100))
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "stream" in line] == [1, 2, 3]


def test_unknown_model_is_refused_before_anything_is_read():
    from harmcli.errors import UsageError

    with pytest.raises(UsageError, match="unknown model 'nope'"):
        resolve_config("lite", model="nope")


def test_a_run_that_cannot_start_leaves_no_folder(tmp_path):
    from harmcli.errors import DatasetError

    with pytest.raises(DatasetError, match="no such folder"):
        train([tmp_path / "nowhere"], tmp_path / "run", _config())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a training folder"):
        train([tmp_path / "empty"], tmp_path / "run", _config())
    assert not (tmp_path / "run").exists()


def test_foreign_checkpoint_is_refused(tiny_data, tmp_path):
    from harmcli.errors import HarmcliError

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 3}, run / "checkpoint.pt")
    with pytest.raises(HarmcliError, match="not a harmcli training checkpoint"):
        train([tiny_data], run, _config())
    (run / "checkpoint.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(HarmcliError, match="not a readable checkpoint") as info:
        train([tiny_data], run, _config())
    assert "\n" not in str(info.value)


def test_reads_the_iharmony4_layout(tmp_path):
    from harmcli.train.data import TrainingData, discover_samples
    from tests.eval.conftest import make_iharmony

    root = tmp_path / "Tiny"
    make_iharmony(root, count=5)
    listed = (root / "Tiny_test.txt").read_text().split()
    (root / "Tiny_train.txt").write_text(listed[-1] + "\n")  # one training composite, the rest are test
    samples = discover_samples(root)
    assert sorted(s.split for s in samples) == ["train"] + ["val"] * 4
    assert all(s.role == "supervised" and s.target is not None and s.background is None for s in samples)
    data = TrainingData(samples, size=32)
    assert data.count("supervised") == 1 and data.count("val") == 4
    batch = data.batch("val", torch.arange(2))
    # Without a separate background, the network's background input is the composite itself.
    assert torch.equal(batch.background, batch.composite)
    assert batch.target.shape == (2, 3, 32, 32)


def test_init_starts_from_a_weights_file(tiny_data, tmp_path):
    from harmcli.models import create_model
    from harmcli.weights import save_weights

    # A recognisable starting point: the identity model with one head weight set to a known value.
    start = create_model("lite")
    with torch.no_grad():
        start.curves_head.mlp[2].weight.fill_(0.01)
    save_weights(start, tmp_path / "start.safetensors")
    run = tmp_path / "run"
    train([tiny_data], run, _config(max_steps=1, val_every=100, init_weights=str(tmp_path / "start.safetensors")))
    trained = torch.load(run / "checkpoint.pt", weights_only=True)["model"]["curves_head.mlp.2.weight"]
    # One small Adam step moves each weight by about the learning rate, not back to zero.
    assert torch.allclose(trained, torch.full_like(trained, 0.01), atol=1e-3)
    assert not torch.equal(trained, torch.full_like(trained, 0.01))


def test_init_with_another_preset_is_refused_before_reading_data(tmp_path):
    from harmcli.errors import HarmcliError
    from harmcli.models import create_model
    from harmcli.weights import save_weights

    save_weights(create_model("lite"), tmp_path / "lite.safetensors")
    config = resolve_config("paper", max_steps=1, init_weights=str(tmp_path / "lite.safetensors"))
    (tmp_path / "data").mkdir()
    with pytest.raises(HarmcliError, match="holds model 'lite'"):
        train([tmp_path / "data"], tmp_path / "run", config)
    assert not (tmp_path / "run").exists()


def test_resume_reports_options_it_keeps_from_the_checkpoint(tiny_data, tmp_path):
    run = tmp_path / "run"
    train([tiny_data], run, _config(max_steps=1, val_every=100))
    events = []
    threads = torch.get_num_threads()
    try:
        # Threads belong to the machine, not the run: a resume may change them, and says nothing about it.
        train([tiny_data], run, _config(max_steps=2, val_every=100, lr=1e-3, threads=2), on_event=lambda kind, rec: events.append((kind, rec)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    resume = next(rec for kind, rec in events if kind == "resume")
    assert resume["ignored"] == {"lr": {"given": 1e-3, "kept": 1.5e-4}}
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr"] == 1.5e-4 and saved["threads"] == 2
