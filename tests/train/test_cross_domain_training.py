import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from harmcli.data.composites import make_composites
from harmcli.errors import DatasetError
from harmcli.models import PRESETS
from harmcli.models.lite import LiteHarmonizer
from harmcli.train.data import TrainingData
from harmcli.train.loop import train
from harmcli.weights import load_weights
from tests.data.test_make_composites import write_source
from tests.train.fake_render import write_fake_render
from tests.train.test_training import _config


@pytest.fixture(scope="module")
def photo_and_render(tmp_path_factory):
    root = tmp_path_factory.mktemp("xdomain")
    src = write_source(root / "src", np.random.default_rng(5), count=6, size=(48, 48))
    make_composites(src, root / "photos", modes=("real", "retouch"), seed=0, val_fraction=0.3)
    return root / "photos", write_fake_render(root / "render", scenes=3, size=48)


def test_rendered_folders_load_with_their_styles(photo_and_render):
    photos, render = photo_and_render
    data = TrainingData.from_folders([photos, render], 32)
    assert data.count("rendered") == 6 and data.count("val_rendered") == 3  # 2 train scenes, 1 val scene x 3 pairs
    batch = data.batch("rendered", torch.arange(3))
    assert batch.style_in.shape == (3, 10) and torch.allclose(batch.style_in.sum(1), torch.ones(3))
    # The pairs of a scene are (fg 1, bg 0), (fg 2, bg 3), (fg 0, bg 1): the target has the background's style.
    assert batch.style_out.argmax(1).tolist() == [0, 3, 1] and torch.equal(batch.style_out.sum(1), torch.ones(3))
    assert data.batch("supervised", torch.arange(2)).style_in is None  # photos have no style labels


def test_a_given_target_style_label_is_used_as_is(tmp_path):
    render = write_fake_render(tmp_path / "render", scenes=2, size=32, explicit_target=True)
    lines = (render / "manifest.jsonl").read_text().splitlines()
    # A label the soft label could not give: the reader must take the file's word for it.
    rows = [json.loads(line) for line in lines]
    rows[0]["target_style_label"] = [0.0] * 9 + [1.0]
    (render / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = TrainingData.from_folders([render], 32)
    assert data.batch("val_rendered", torch.arange(3)).style_out.argmax(1).tolist() == [9, 3, 1]


def test_two_step_cross_domain_run_resumes_and_ships_the_photo_branch(photo_and_render, tmp_path):
    photos, render = photo_and_render
    run = tmp_path / "run"
    events = []
    config = _config(max_steps=2, val_every=2, checkpoint_every=1, cross_domain=True, rendered_fraction=0.5, batch_size=4, size=64)
    first = train([photos, render], run, config, on_event=lambda kind, rec: events.append((kind, rec)))
    assert first["step"] == 2
    data_counts = next(rec for kind, rec in events if kind == "data")
    assert data_counts["rendered"] == 6 and data_counts["val_rendered"] == 3
    steps = [rec for kind, rec in events if kind == "step"]
    keys = set().union(*steps)
    # Every term of eq. 6 was computed at least once, and finite.
    for key in ("loss_l1", "loss_l1_rendered", "loss_domain_g", "loss_domain_d", "loss_style_in", "loss_style_out",
                "loss_style_w", "loss_style_er"):
        assert key in keys, key
    assert all(np.isfinite(v) for rec in steps for k, v in rec.items() if k.startswith("loss_"))
    val = next(rec for kind, rec in events if kind == "val")
    assert val["val_count"] == 4 and val["val_rendered_count"] == 3 and "val_rendered_fMSE" in val

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert any(k.startswith("rendered.") for k in state["model"])
    assert {"style", "critic"} <= set(state["cross_domain"]) and "opt_x" in state
    # The rendered branch trained apart from the photo branch.
    assert not torch.equal(state["model"]["rendered.curves_last.weight"], state["model"]["curves_head.mlp.2.weight"])

    # Saved weights: the photo branch only, loading into the plain inference model.
    tensors = load_file(str(run / "best.safetensors"))
    assert not any(k.startswith("rendered.") for k in tensors)
    model = load_weights(run / "best.safetensors")
    assert type(model) is LiteHarmonizer and not model.cross_domain
    assert model.config.options == PRESETS["lite"].options
    assert torch.equal(tensors["curves_head.mlp.2.weight"], state["model"]["curves_head.mlp.2.weight"].half())

    events.clear()
    second = train([photos, render], run, _config(max_steps=4, cross_domain=True, size=64), on_event=lambda k, r: events.append((k, r)))
    assert second["step"] == 4
    assert next(rec for kind, rec in events if kind == "step")["step"] == 3
    # The run kept its own settings (checkpoint), not the defaults given now.
    assert json.loads((run / "config.json").read_text())["rendered_fraction"] == 0.5


def test_naive_rendered_mixing_and_ema(photo_and_render, tmp_path):
    photos, render = photo_and_render
    run = tmp_path / "run"
    events = []
    train([photos, render], run, _config(max_steps=3, rendered_fraction=1.0, ema_decay=0.5, adversarial=False, val_limit=0),
          on_event=lambda kind, rec: events.append((kind, rec)))
    steps = [rec for kind, rec in events if kind == "step"]
    # Every supervised sample rendered; no cross-domain terms without --cross-domain.
    assert all("loss_l1_rendered" in r and "loss_l1" not in r and "loss_style_w" not in r for r in steps)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("rendered.") for k in state["model"])
    # The saved weights are the average, not the last step's weights.
    saved = load_file(str(run / "last.safetensors"))
    name = "curves_head.mlp.2.weight"
    assert torch.equal(saved[name], state["ema"][name].half())
    assert not torch.equal(state["ema"][name], state["model"][name])
    val = next(rec for kind, rec in events if kind == "val")
    assert val["val_count"] == 4  # --val-limit 0: every held-out pair


def test_cross_domain_needs_rendered_data(photo_and_render, tmp_path):
    photos, _ = photo_and_render
    with pytest.raises(DatasetError, match="rendered"):
        train([photos], tmp_path / "run", _config(cross_domain=True))
    assert not (tmp_path / "run").exists()
