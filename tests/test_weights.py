import pytest
import torch

from harmcli.errors import WeightsError
from harmcli.models import create_model
from harmcli.weights import load_weights, read_metadata, save_weights


def test_round_trip_keeps_config_and_values(tmp_path):
    model = create_model("lite")
    with torch.no_grad():
        model.curves_head.mlp[-1].bias.fill_(0.125)  # exactly representable in fp16
    path = save_weights(model, tmp_path / "w.safetensors", info={"data": "synthetic"})
    meta = read_metadata(path)
    assert meta["model"] == "lite" and meta["config"]["low_res"] == model.config.low_res
    assert meta["info"] == {"data": "synthetic"}
    loaded = load_weights(path)
    assert not loaded.training
    assert torch.equal(loaded.curves_head.mlp[-1].bias, torch.full_like(loaded.curves_head.mlp[-1].bias, 0.125))


def test_not_safetensors_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a weights file")
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        load_weights(bad)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "none.safetensors")


def test_safetensors_without_harmcli_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="not a harmcli weights file"):
        load_weights(path)


def test_tensors_that_do_not_match_the_model(tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = save_weights(create_model("lite"), tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(WeightsError, match="does not match"):
        load_weights(path)
