"""Weights files: ``.safetensors`` with the model config and provenance in the header metadata.

Loading never unpickles. The metadata keys are strings (a safetensors rule); structured values are JSON.
torch and the model package are imported inside the functions that build networks: finding the default weights
and reading metadata must not cost a PyTorch import (the ONNX Runtime path never loads torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harmcli import __version__
from harmcli.errors import WeightsError

if TYPE_CHECKING:
    import torch

    from harmcli.models import HarmonizationNet

FORMAT = "harmcli-weights"
DEFAULT_WEIGHTS_NAME = "harmcli-lite.safetensors"


def default_weights_path() -> Path | None:
    """The shipped default weights: ``weights/`` of a source checkout (editable install), or the copy that a
    regular ``pip install`` puts in ``<prefix>/share/harmcli/weights`` (see pyproject's data-files)."""
    candidates = (
        Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS_NAME,
        Path(sys.prefix) / "share" / "harmcli" / "weights" / DEFAULT_WEIGHTS_NAME,
    )
    return next((path for path in candidates if path.is_file()), None)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes: ties an exported ``.onnx`` to the exact weights it came from (about 5 ms
    for the shipped 7 MB file)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_weights(model: HarmonizationNet, path: str | Path, *, info: dict | None = None, half: bool = True) -> Path:
    """Write the parameters and buffers inference needs (fp16 by default, to keep files small) atomically.

    A cross-domain training model is saved as its photo branch, a plain model of the same preset."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {}
    config = model.inference_config()
    for name, value in model.inference_state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        tensors[name] = value.contiguous()
    metadata = {
        "format": FORMAT,
        "harmcli_version": __version__,
        "model": config.name,
        "config": json.dumps(config.to_dict()),
        "low_res": str(config.low_res),
        "info": json.dumps(info or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a weights file is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def average_weights(paths: list[str | Path], output: str | Path, *, info: dict | None = None) -> Path:
    """Write the uniform average of several weights files of one model (a "model soup", Wortsman et al. 2022).

    Runs fine-tuned from one starting file stay in one basin of the loss, so the mean of their weights is a
    model too, often better than each: two runs that traded corrections against changes to coherent photos
    differently averaged to one that beat both on corrections (weights/README.md). Floating-point tensors
    (weights and batch-norm statistics) are averaged in float32; integer buffers are the first file's. The
    output's ``info`` records the sources' names and steps, plus ``info``.

    Raises:
        WeightsError: fewer than two files, or files of different models.
    """
    import torch

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise WeightsError("averaging needs two or more weights files")
    metas = [read_metadata(p) for p in paths]
    if any(m["config"] != metas[0]["config"] for m in metas[1:]):
        raise WeightsError("the weights files describe different models; only one model's files can be averaged")
    models = [load_weights(p) for p in paths]
    states = [m.state_dict() for m in models]
    merged = {}
    for name, value in states[0].items():
        if value.is_floating_point():
            merged[name] = torch.stack([s[name].float() for s in states]).mean(0).to(value.dtype)
        else:
            merged[name] = value
    models[0].load_state_dict(merged)
    members = [{"file": p.name, "step": m["info"].get("step"), "recipe": m["info"].get("recipe")} for p, m in zip(paths, metas)]
    return save_weights(models[0], output, info={"average_of": members, **(info or {})})


def read_metadata(path: str | Path) -> dict:
    """The header metadata of a weights file, with ``config`` and ``info`` decoded."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder; --weights takes a .safetensors file (e.g. runs/a/best.safetensors)")
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror or exc})") from None
    try:
        with safe_open(str(path), framework="numpy") as handle:  # the header only; "numpy" keeps torch unloaded
            meta = dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises several types for a corrupt header
        raise WeightsError(f"{path}: not a valid safetensors weights file ({exc})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise WeightsError(f"{path}: safetensors file without harmcli metadata (not a harmcli weights file)")
    try:
        meta["config"] = json.loads(meta["config"])
        meta["info"] = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: weights metadata is corrupt") from None
    return meta


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> HarmonizationNet:
    """Build the network described in the file's metadata and load its tensors (as float32), in eval mode."""
    from safetensors.torch import load_file

    from harmcli.models import ModelConfig, create_model

    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(meta["config"])
        model = create_model(config)
    except Exception as exc:
        raise WeightsError(f"{path}: model config in the file is not usable ({exc})") from None
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise WeightsError(f"{path}: tensors could not be read ({exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: does not match model '{config.name}' ({len(missing)} missing, {len(unexpected)} unexpected tensors)"
        )
    for name, value in tensors.items():
        if value.shape != own[name].shape:
            raise WeightsError(f"{path}: tensor {name} has shape {tuple(value.shape)}, model expects {tuple(own[name].shape)}")
        tensors[name] = value.to(own[name].dtype)
    model.load_state_dict(tensors)
    return model.to(device).eval()
