"""``harmcli bench``: where the time and memory of a harmonize go, stage by stage, on this machine.

For each requested size a realistic scene is generated (smooth gradients, texture and noise; an object-shaped
soft mask over about 35 % of the frame), written as a JPEG at quality 95 plus a PNG mask, and every stage of
``harmcli harmonize`` is timed on it with the library's own functions:

========== =============================================================================================
decode     ``harmcli.io.images.read_image`` of the composite JPEG (header checks, decode, BGR -> RGB)
downsample ``Harmonizer.low_res_inputs``: composite, background and mask to the model's low-res, on the device
network    the forward pass at low-res plus the outputs' copy to the host (``Harmonizer.predict`` minus the
           downsample); measured once per model and precision: it does not depend on the full-res size
apply      ``harmcli.ops.apply.apply_adjustment`` at full resolution, with the mask as harmcli reads it
           (float32) and a synthetic adjustment (32-point curves + a smooth shading map at the model's low-res)
encode     ``harmcli.io.images.write_image`` as JPEG q95 and as PNG (to a temporary folder)
========== =============================================================================================

Each stage gets ``warmup`` untimed calls, then ``runs`` timed ones (median, min, max); on CUDA,
``torch.cuda.synchronize()`` runs before each timestamp. Without ``--weights`` the network is untrained
(``create_model``): its speed does not depend on trained values. In the same run, the **floor** of the apply stage
is one ``cv2.LUT`` pass over the same 8-bit RGB image, and ``ratio`` = apply median / floor median.

**Peak memory** of a full harmonize of the largest size (read composite + mask, predict, apply, write a JPEG) is
measured in a fresh child process: CPU = the rise of the process's peak RSS over its RSS once the model is
loaded (every NumPy/OpenCV/torch buffer counts). On Linux the peak is ``VmHWM``, reset just before the harmonize
(``ru_maxrss`` of a child inherits the parent's high-water mark through fork/exec); elsewhere ``ru_maxrss``, an
upper bound. CUDA adds ``torch.cuda.max_memory_allocated``. **Folder mode** (``folder=N``) times N 4K JPEGs
through (a) a plain OpenCV loop that only reads, downsamples, LUT-blends with the mask and writes, and (b) harmcli's
folder pipeline
(:func:`harmcli.batch.run_batch`, or a ``Harmonizer.harmonize`` loop when that is unavailable; ``mode`` says which).
**Video** (``video=N``) times N frames of a generated 1080p H.264 clip and its H.264 mask through
:func:`harmcli.clip.run.harmonize_clip` (both passes, default smoothing, H.264 out): see :mod:`harmcli.bench.video`.

JSON schema (``schema`` = ``"harmcli-bench/1"``; times in milliseconds, memory in MiB)::

    {
      "schema": "harmcli-bench/1",
      "created": "2025-01-01T12:00:00Z",
      "device": ["cpu"],                       # torch devices measured, as resolved ("cuda:0", ...)
      "torch_threads": 2, "opencv_threads": 2,
      "cpu": {"name": str, "logical_cores": int, "machine": str},
      "gpu": null | {"name": str, "memory_mib": float},
      "versions": {"harmcli", "python", "torch", "numpy", "opencv"},
      "settings": {"runs": int, "warmup": int, "fp16": bool | null, "weights": str | null,
                   "threads": int | null, "folder": int},
      "models": {NAME: {"preset": str, "low_res": int, "parameters": int, "weights": "untrained" | path}},
      "sizes": {SIZE: {"width": int, "height": int, "megapixels": float, "mask_coverage": float,
                       "jpeg_bytes": int}},
      "stages": [{"stage": "decode" | "downsample" | "network" | "apply" | "encode_jpeg" | "encode_png",
                  "size": SIZE | null,             # null for network (size-independent)
                  "device": "cpu" | "cuda:0",      # where it ran: decode, apply, encode always on the CPU
                  "model": NAME | null, "precision": "fp32" | "fp16" | "bf16" | null,
                  "median_ms": float, "min_ms": float, "max_ms": float, "runs": int}],
      "floor": [{"size": SIZE, "median_ms", "min_ms", "max_ms", "apply_median_ms": float, "ratio": float}],
      "totals": [{"size", "device", "model", "precision", "median_ms"}],   # decode + downsample + network
                                                                           # + apply + encode_jpeg medians
      "peak_memory": [{"device", "model", "size", "baseline_rss_mib", "peak_rss_mib", "rss_increase_mib",
                       "method": str, "cuda_max_allocated_mib": float | null}],   # [] when skipped
      "folder": null | {"images": int, "size": "4k", "device", "model", "mode": str, "repeats": int,
                        "opencv_loop_s": float, "harmcli_s": float, "ratio": float,
                        "opencv_ms_per_image": float, "harmcli_ms_per_image": float},
      "video": null | {"frames": int, "size": "1080p", "device", "model", "backend", "network_threads": int,
                       "codec": "h264", "crf": int,
                       "temporal": float, "seconds": float, "frames_per_second": float,
                       "breakdown_s": {"analyse", "smooth", "write", "read", "network", "apply", "encode",
                                       "second_decode": float}},   # harmcli.clip.run.ClipResult's timings
      "notes": [str]
    }
"""

# One module per concern: config (sizes, models, settings), timing, scenes (generated inputs), networks (what is
# timed), stages (the run itself: run_bench), runners + folder (whole harmonize runs, folder mode vs the OpenCV
# floor), memory (child-process probe), system (machine info), report (rich tables).
from harmcli.bench.config import SCHEMA, STAGES, BenchConfig, BenchSize, ModelSpec, parse_model, parse_sizes
from harmcli.bench.memory import memory_probe
from harmcli.bench.report import render
from harmcli.bench.scenes import make_scene, object_mask, synthetic_adjustment, write_scene
from harmcli.bench.stages import run_bench
from harmcli.bench.timing import Timing, time_call

__all__ = [
    "SCHEMA", "STAGES", "BenchConfig", "BenchSize", "ModelSpec", "Timing", "make_scene", "memory_probe", "object_mask",
    "parse_model", "parse_sizes", "render", "run_bench", "synthetic_adjustment", "time_call", "write_scene",
]
