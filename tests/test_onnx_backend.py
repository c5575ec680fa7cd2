"""The ONNX Runtime engine: exports carry their metadata, agree with PyTorch, and stale exports are never used."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harmcli import __version__
from harmcli.errors import BackendError, UsageError, WeightsError
from harmcli.onnx_backend import OnnxNetwork, export_onnx, onnx_path_for
from harmcli.pipeline import Harmonizer, OnnxHarmonizer, load_harmonizer
from harmcli.weights import default_weights_path, file_sha256, read_metadata, save_weights
from tests.cli import TEST_LOW_RES, _perturbed_lite, make_scene

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A network with a real (non-identity) adjustment, saved with its ONNX export beside it."""
    folder = tmp_path_factory.mktemp("exported")
    weights = save_weights(_perturbed_lite(seed=3), folder / "active.safetensors")
    export_onnx(weights, onnx_path_for(weights))
    return weights


def _single_thread_torch():
    import torch

    torch.set_num_threads(1)  # a busy 2-core machine: see tests/cli TORCH_THREADS_ENV


def test_export_carries_the_weights_metadata(exported):
    network = OnnxNetwork(onnx_path_for(exported))
    meta = network.metadata
    source = read_metadata(exported)
    assert meta["format"] == "harmcli-onnx" and meta["harmcli_version"] == __version__
    assert meta["model"] == "lite" and network.model_name == "lite"
    assert meta["low_res"] == str(TEST_LOW_RES) and network.low_res == TEST_LOW_RES
    assert json.loads(meta["config"]) == source["config"]
    assert meta["weights_version"] == source["harmcli_version"] and meta["weights_file"] == "active.safetensors"
    assert meta["weights_sha256"] == file_sha256(exported) and len(meta["weights_sha256"]) == 64


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_onnx_and_torch_outputs_within_one_code_value(exported, dtype):
    _single_thread_torch()
    torch_engine = load_harmonizer(exported, "cpu", "torch", threads=1)
    onnx_engine = load_harmonizer(exported, "cpu", "onnx", threads=1)
    assert isinstance(torch_engine, Harmonizer) and isinstance(onnx_engine, OnnxHarmonizer)
    for seed in (0, 1, 2):
        scene = make_scene(dtype, seed=seed, size=(90, 120))
        composite = scene.composite()
        by_torch, adj_torch = torch_engine.harmonize(composite, scene.bg, scene.mask)
        by_onnx, adj_onnx = onnx_engine.harmonize(composite, scene.bg, scene.mask)
        assert by_onnx.dtype == by_torch.dtype == dtype
        assert np.abs(by_onnx.astype(np.int64) - by_torch.astype(np.int64)).max() <= 1
        # A real adjustment, so the agreement means something: the foreground moves by many code values.
        scale = np.iinfo(dtype).max / 255
        assert np.abs(by_torch.astype(np.int64) - composite.astype(np.int64)).max() > 10 * scale
        assert np.abs(adj_onnx.curve_y - adj_torch.curve_y).max() < 1e-5
        assert np.abs(adj_onnx.shading / adj_torch.shading - 1).max() < 1e-5


def test_shipped_onnx_matches_the_shipped_safetensors():
    """weights/harmcli-lite.onnx must be the export of weights/harmcli-lite.safetensors: same file hash recorded,
    same adjustment on several composites. Fails when one is retrained without re-exporting the other."""
    from harmcli.bench.scenes import make_scene as photo_scene

    _single_thread_torch()
    weights = default_weights_path()
    assert weights is not None and weights.parent == REPO / "weights"
    exported = onnx_path_for(weights)
    assert exported.is_file(), "run: harmcli export weights/harmcli-lite.safetensors"
    onnx_engine = load_harmonizer(weights, "cpu", "onnx", threads=1)
    assert onnx_engine.network.weights_sha256 == file_sha256(weights)
    assert onnx_engine.network.metadata["low_res"] == str(read_metadata(weights)["config"]["low_res"])
    torch_engine = load_harmonizer(weights, "cpu", "torch", threads=1)
    moved = []
    for seed in (0, 1, 2):
        composite, background, mask = photo_scene(320, 240, seed)
        adj_onnx = onnx_engine.predict(composite, background, mask)
        adj_torch = torch_engine.predict(composite, background, mask)
        assert np.abs(adj_onnx.curve_y - adj_torch.curve_y).max() < 1e-5
        assert np.abs(adj_onnx.shading / adj_torch.shading - 1).max() < 1e-5
        moved.append(np.abs(adj_torch.curve_y - np.linspace(0, 1, adj_torch.curve_y.shape[-1])).max())
    assert max(moved) > 0.01  # the trained network does adjust these composites


def test_auto_prefers_an_up_to_date_export_on_the_cpu(exported, tmp_path):
    assert isinstance(load_harmonizer(exported, "cpu", "auto"), OnnxHarmonizer)
    assert isinstance(load_harmonizer(onnx_path_for(exported), "auto", "auto"), OnnxHarmonizer)  # the .onnx itself
    alone = shutil.copy(exported, tmp_path / "alone.safetensors")
    assert isinstance(load_harmonizer(alone, "cpu", "auto"), Harmonizer)  # no export beside: PyTorch
    with pytest.raises(WeightsError, match=r"no ONNX export beside it.*harmcli export"):
        load_harmonizer(alone, "cpu", "onnx")


def test_a_stale_export_is_never_used(exported, tmp_path):
    other = save_weights(_perturbed_lite(seed=4), tmp_path / "other.safetensors")
    shutil.copy(onnx_path_for(exported), onnx_path_for(other))  # an export of different weights
    notes = []
    assert isinstance(load_harmonizer(other, "cpu", "auto", notes=notes), Harmonizer)
    assert len(notes) == 1 and "exported from other weights" in notes[0] and "harmcli export" in notes[0]
    assert "--overwrite" in notes[0]  # the stale file is in the way: the command given must be one that works
    with pytest.raises(WeightsError, match="exported from other weights"):
        load_harmonizer(other, "cpu", "onnx")


def test_backend_conflicts_are_usage_errors(exported):
    with pytest.raises(UsageError, match="runs on the CPU"):
        load_harmonizer(exported, "cuda", "onnx")
    with pytest.raises(UsageError, match="needs the .safetensors"):
        load_harmonizer(onnx_path_for(exported), "cpu", "torch")
    with pytest.raises(UsageError, match="--backend"):
        load_harmonizer(exported, "cpu", "tensorrt")


def test_missing_onnx_runtime_falls_back_or_says_so(exported, monkeypatch):
    import harmcli.onnx_backend as backend

    monkeypatch.setattr(backend, "onnx_runtime_installed", lambda: False)
    assert isinstance(load_harmonizer(exported, "cpu", "auto"), Harmonizer)
    with pytest.raises(BackendError, match="pip install onnxruntime"):
        load_harmonizer(exported, "cpu", "onnx")


def test_cuda_is_ruled_out_without_importing_torch(monkeypatch):
    from harmcli import pipeline

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not pipeline._cuda_may_be_present("auto")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(pipeline.sys, "platform", "linux")
    monkeypatch.setattr(pipeline.os.path, "exists", lambda path: False)  # no NVIDIA driver
    assert not pipeline._cuda_may_be_present("auto")
    assert pipeline._cuda_may_be_present("cuda:1") and not pipeline._cuda_may_be_present("cpu")


def test_not_an_onnx_file_is_a_weights_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="not a usable ONNX model"):
        OnnxNetwork(bad)
    with pytest.raises(WeightsError, match="not found"):
        OnnxNetwork(tmp_path / "none.onnx")


def test_batched_low_res_prediction_matches_torch(exported):
    """predict_low_res (the clip path's batch call) gives the same adjustments on both engines."""
    from harmcli.pipeline import downsample
    from harmcli.ops.apply import mask_to_float

    _single_thread_torch()
    scenes = [make_scene(seed=s, size=(90, 120)) for s in (4, 5)]
    size = TEST_LOW_RES
    composites = np.stack([downsample(s.composite(), size) for s in scenes])
    backgrounds = np.stack([downsample(s.bg, size) for s in scenes])
    masks = np.stack([downsample(mask_to_float(s.mask), size) for s in scenes])
    curves_t, shading_t = load_harmonizer(exported, "cpu", "torch").predict_low_res(composites, backgrounds, masks)
    curves_o, shading_o = load_harmonizer(exported, "cpu", "onnx").predict_low_res(composites, backgrounds, masks)
    assert curves_o.shape == curves_t.shape == (2, 3, 32) and shading_o.shape == shading_t.shape == (2, size, size)
    assert np.abs(curves_o - curves_t).max() < 1e-5 and np.abs(shading_o / shading_t - 1).max() < 1e-5
    assert np.abs(shading_t[0] - shading_t[1]).max() > 1e-3  # two different scenes, two different shading maps


def test_mirror_averaging_hand_computed():
    from harmcli.pipeline import mirror_averaged

    curves = np.array([[[0.0, 0.4, 1.0]] * 3], np.float32)
    curves_mirror = np.array([[[0.0, 0.6, 0.8]] * 3], np.float32)
    shading = np.array([[[2.0, 1.0], [1.0, 1.0]]], np.float32)
    # The mirror's map as the network gave it: its left column is the image's right column.
    shading_mirror = np.array([[[1.0, 0.5], [4.0, 1.0]]], np.float32)
    y, s = mirror_averaged(curves, shading, curves_mirror, shading_mirror)
    assert np.allclose(y, [[[0.0, 0.5, 0.9]] * 3])
    assert np.allclose(s, [[[1.0, 1.0], [1.0, 2.0]]])  # sqrt(2*0.5), sqrt(1*1); sqrt(1*1), sqrt(1*4)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_flip_average_is_the_mean_of_the_image_and_its_mirror(exported, backend):
    from harmcli.pipeline import mirror_averaged

    _single_thread_torch()
    engine = load_harmonizer(exported, "cpu", backend, threads=1)
    assert engine.flip_average  # the default
    scene = make_scene(seed=6, size=(90, 120))
    composite = scene.composite()
    averaged = engine.predict(composite, scene.bg, scene.mask)
    engine.flip_average = False
    plain = engine.predict(composite, scene.bg, scene.mask)
    mirror = engine.predict(composite[:, ::-1].copy(), scene.bg[:, ::-1].copy(), scene.mask[:, ::-1].copy())
    y, s = mirror_averaged(plain.curve_y, plain.shading, mirror.curve_y, mirror.shading)
    assert np.abs(averaged.curve_y - y).max() < 1e-5 and np.abs(averaged.shading / s - 1).max() < 1e-4
    # The scene is not symmetric, so the two shading maps differ (flipped back) and the average is a third one.
    # (The test network's curves hardly depend on the image: its perturbation is in the heads' last layers.)
    assert np.abs(plain.shading / mirror.shading[:, ::-1] - 1).max() > 1e-2
    assert np.abs(averaged.shading / plain.shading - 1).max() > 5e-3

