"""The network through ONNX Runtime: one image in well under a second, without importing PyTorch.

This is the only module that imports ``onnxruntime`` (and, for :func:`export_onnx`, ``onnx`` and torch).

Why it exists. A one-shot ``harmcli harmonize`` of a 4K JPEG spent about 1.6 s of its 3.2 s importing torch,
against 26 ms in the network itself (``python -X importtime``, 2-core EPYC). ``import onnxruntime`` costs about
0.1 s. So on the CPU the network runs from an ONNX file exported from our own safetensors weights, and torch is
left for training, CUDA and as the fallback (``--backend torch``).

Choices, each measured on that machine with other jobs running (load average 8-10: read the figures as ratios;
scripts interleaved the variants, medians of 9 or more):

* **The exported graph is pre-optimised at ORT's "basic" level** (constant folding, redundant nodes removed:
  standard ONNX operators only, so the file does not depend on this CPU or this ORT version). The tracer leaves
  1292 nodes, mostly shape arithmetic; the optimised file has 193, and a session over it is set up about a
  quarter faster.
* **At run time ORT's full level** (``ORT_ENABLE_ALL``, which adds the NCHWc convolution layout): a forward pass
  of 31-33 ms against 46-62 ms at "extended" or "basic". It costs more to set up, so for a single image the levels
  come out even (session + first pass 87-118 ms against 91-106 ms over three rounds); for a folder "all" wins.
  Saving the fully optimised graph is not an option for a shipped file: ORT warns that it is specific to the CPU
  it was made on.
* **fp32 weights in the file** (13.8 MB beside the 7 MB fp16 safetensors). The exporter folds batch norms into
  the convolutions, and the folded weights are no longer exact in fp16: rounded to fp16 they moved 16-bit
  outputs by 8-15 code values from the fp32 export's (three 640 x 480 scenes; 8-bit: 1). In fp32 the adjustment
  matches torch's to about 1e-7, and outputs stay within one code value of the torch path's.
* **Threads**: as asked (``--threads``), else ORT's default (one per physical core), with workers that sleep
  instead of spinning: a forward pass took 23-33 ms that way against 56 ms with spinning workers, which compete
  with the reading and writing threads and with other processes.
* The ONNX file records the SHA-256 of the safetensors file it came from (hashing the shipped 7 MB file takes
  about 5-12 ms): a stale export (weights retrained, ``.onnx`` left behind) is detected, never silently used.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harmcli import __version__
from harmcli.errors import BackendError, HarmcliError, WeightsError

if TYPE_CHECKING:
    from harmcli.models import HarmonizationNet

FORMAT = "harmcli-onnx"
OPSET = 17
INPUTS = ("composite", "background", "mask")
OUTPUTS = ("curve_y", "shading")


def onnx_runtime_installed() -> bool:
    """Whether ``onnxruntime`` can be imported, without importing it (0.1 s)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def onnx_path_for(weights: str | Path) -> Path:
    """Where the export of ``weights`` lives: beside it, same stem, ``.onnx``."""
    return Path(weights).with_suffix(".onnx")


class OnnxNetwork:
    """An ONNX Runtime session over an exported harmcli network; called like the torch network, on NumPy arrays.

    ``metadata`` holds what :func:`export_onnx` stored (model, low_res, versions, the weights' SHA-256).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError(
                "ONNX Runtime is not installed: pip install onnxruntime (or use --backend torch)"
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: ONNX file not found")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's informational lines would land on the user's stderr
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types for unreadable or invalid files
            raise WeightsError(f"{self.path}: not a usable ONNX model ({exc})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("format") != FORMAT or "low_res" not in self.metadata:
            raise WeightsError(f"{self.path}: ONNX file without harmcli metadata (make one with 'harmcli export')")
        self.low_res = int(self.metadata["low_res"])
        self.model_name = self.metadata.get("model", "?")
        self.weights_sha256 = self.metadata.get("weights_sha256")

    def __call__(self, composite: np.ndarray, background: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 3, S, S), (1, 3, S, S), (1, 1, S, S) float32 in [0, 1] -> ``curve_y`` (1, 3, K), ``shading`` (1, 1, S, S)."""
        feeds = dict(zip(INPUTS, (composite, background, mask)))
        curve_y, shading = self.session.run(list(OUTPUTS), feeds)
        return curve_y, shading


def export_onnx(weights: str | Path, output: str | Path) -> Path:
    """Export the network in a harmcli ``.safetensors`` file to ONNX, with its metadata and SHA-256 recorded."""
    from harmcli.weights import file_sha256, load_weights, read_metadata

    meta = read_metadata(weights)
    model = load_weights(weights, "cpu")
    source = {
        "weights_sha256": file_sha256(weights),
        "weights_file": Path(weights).name,
        "weights_version": meta.get("harmcli_version", ""),
        "info": json.dumps(meta.get("info", {})),
    }
    return export_model(model, output, source=source)


def export_model(model: HarmonizationNet, output: str | Path, *, source: dict[str, str] | None = None) -> Path:
    """Trace ``model`` at its low-res size, pre-optimise the graph (ORT basic level), write it atomically.

    ``source`` adds metadata entries (strings), e.g. the weights file's SHA-256.
    """
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(
            f"harmcli export needs the onnx and onnxruntime packages ({exc.name} is missing): pip install onnx onnxruntime"
        ) from None
    import torch

    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise HarmcliError(f"{output}: the output of an export must end in .onnx")
    size = model.config.low_res
    generator = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(1, c, size, size, generator=generator) for c in (3, 3, 1))
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harmcli-export-") as tmp:
        traced, optimised = Path(tmp) / "traced.onnx", Path(tmp) / "optimised.onnx"
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # The tracer warns about Python values taken from tensors (padding, sizes): the graph is for this one
            # low-res size, which is what the network always sees. The legacy TorchScript exporter is used because
            # the newer one needs onnxscript, and this graph has nothing it cannot trace.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(), example, str(traced), dynamo=False, opset_version=OPSET, input_names=list(INPUTS),
                output_names=list(OUTPUTS), do_constant_folding=True,
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(optimised)
        options.log_severity_level = 3
        ort.InferenceSession(str(traced), options, providers=["CPUExecutionProvider"])
        proto = onnx.load(str(optimised))
    metadata = {
        "format": FORMAT,
        "harmcli_version": __version__,
        "model": model.config.name,
        "low_res": str(size),
        "n_points": str(model.config.n_points),
        "config": json.dumps(model.config.to_dict()),
        **(source or {}),
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "harmcli"
    proto.producer_version = __version__
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=output.parent)
    os.close(fd)
    try:
        onnx.save(proto, tmp_path)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, output)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    return output
