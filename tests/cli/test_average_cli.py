"""``harmcli average``: several weights files of one model into their mean, with the usual output rules."""

from __future__ import annotations

import torch

from harmcli.models import create_model
from harmcli.weights import load_weights, read_metadata, save_weights

from . import TEST_LOW_RES, assert_one_error, run  # noqa: F401  (fixtures)


def _nudged(tmp_path, i: int):
    torch.manual_seed(i)
    model = create_model("lite", low_res=TEST_LOW_RES)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_weights(model, tmp_path / f"m{i}.safetensors", info={"step": 10 * (i + 1)})


def test_average_writes_the_mean_and_loads_as_a_plain_model(run, tmp_path):
    a, b = _nudged(tmp_path, 0), _nudged(tmp_path, 1)
    out = tmp_path / "soup.safetensors"
    result = run("average", a, b, "-o", out)
    assert result.code == 0, result.err
    assert "mean of 2 files" in result.err
    soup, sa, sb = (load_weights(p).state_dict() for p in (out, a, b))
    for name, value in soup.items():
        if value.is_floating_point():  # each input is fp16, and so is the mean
            assert torch.allclose(value, (sa[name] + sb[name]) / 2, atol=2e-3, rtol=1e-3), name
    assert [m["step"] for m in read_metadata(out)["info"]["average_of"]] == [10, 20]


def test_average_refuses_to_replace_files(run, tmp_path):
    a, b = _nudged(tmp_path, 0), _nudged(tmp_path, 1)
    before = a.read_bytes()
    # an input as output: refused even with --overwrite
    assert_one_error(run("average", a, b, "-o", a, "--overwrite"), 1, "one of the inputs")
    assert a.read_bytes() == before
    out = tmp_path / "soup.safetensors"
    out.write_bytes(b"keep")
    assert_one_error(run("average", a, b, "-o", out), 1, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep"
    assert run("average", a, b, "-o", out, "--overwrite").code == 0
    assert out.read_bytes() != b"keep"


def test_average_usage_and_model_errors(run, tmp_path):
    a = _nudged(tmp_path, 0)
    assert_one_error(run("average", a, "-o", tmp_path / "x.safetensors"), 2, "two or more")
    assert_one_error(run("average", a, a, "-o", tmp_path / "x.onnx"), 2, ".safetensors")
    other = save_weights(create_model("lite", low_res=TEST_LOW_RES // 2), tmp_path / "other.safetensors")
    assert_one_error(run("average", a, other, "-o", tmp_path / "x.safetensors"), 1, "different models")
    assert_one_error(run("average", a, tmp_path / "missing.safetensors", "-o", tmp_path / "x.safetensors"), 1, "missing.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
