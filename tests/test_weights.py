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


def test_average_of_weights_files_is_the_mean_of_each_tensor(tmp_path):
    from harmcli.weights import average_weights

    torch.manual_seed(0)
    models = [create_model("lite", low_res=64) for _ in range(3)]
    for i, model in enumerate(models):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1 * (i + 1))
    paths = [save_weights(m, tmp_path / f"m{i}.safetensors", info={"step": 100 * (i + 1)}) for i, m in enumerate(models)]
    out = average_weights(paths, tmp_path / "avg.safetensors", info={"note": "test"})
    averaged = load_weights(out).state_dict()
    loaded = [load_weights(p).state_dict() for p in paths]
    for name, value in averaged.items():
        if value.is_floating_point():
            expected = sum(s[name] for s in loaded) / 3
            # each file is fp16: the mean is rounded to fp16 once more
            assert torch.allclose(value, expected, atol=2e-3, rtol=1e-3), name
    info = read_metadata(out)["info"]
    assert [m["step"] for m in info["average_of"]] == [100, 200, 300] and info["note"] == "test"

    with pytest.raises(WeightsError, match="two or more"):
        average_weights(paths[:1], tmp_path / "one.safetensors")
    other = save_weights(create_model("lite", low_res=32), tmp_path / "other.safetensors")
    with pytest.raises(WeightsError, match="different models"):
        average_weights([paths[0], other], tmp_path / "mixed.safetensors")
