"""The benchmark itself: every stage of a harmonize at every size, then memory and folder mode."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from harmcli.bench.config import JPEG_QUALITY, SCHEMA, BenchConfig, ModelSpec, parse_model
from harmcli.bench.folder import folder_mode
from harmcli.bench.memory import probe_in_child
from harmcli.bench.networks import backends_for, build_harmonizer, build_onnx_harmonizer, network_call, precisions
from harmcli.bench.oneshot import oneshot_mode
from harmcli.bench.scenes import make_scene, synthetic_adjustment, write_scene
from harmcli.bench.system import system_info
from harmcli.bench.timing import Timing, time_call
from harmcli.bench.video import video_mode


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark described by ``config``; returns the report (its JSON schema is in the docstring of :mod:`harmcli.bench`).

    ``progress`` receives a short line before each step. Thread settings changed by ``config.threads`` are
    restored afterwards.
    """
    config.check()
    saved = torch.get_num_threads(), cv2.getNumThreads()
    if config.threads:
        torch.set_num_threads(config.threads)
        cv2.setNumThreads(config.threads)
    try:
        return _run(config, progress or (lambda message: None))
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])


def _run(config: BenchConfig, say: Callable[[str], None]) -> dict:
    from harmcli.io.images import read_image, write_image
    from harmcli.ops.apply import apply_adjustment
    from harmcli.pipeline import resolve_device

    devices = list(dict.fromkeys(resolve_device(d) for d in config.devices))  # raises DeviceError early
    if config.weights is not None:
        from harmcli.weights import read_metadata

        meta = read_metadata(config.weights)
        name = meta["config"].get("name", "lite")
        specs = [ModelSpec(name, name, meta["config"].get("low_res"))]
    else:
        specs = list({s.name: s for s in map(parse_model, config.models)}.values())
    runs, warmup = config.runs, config.warmup
    report: dict = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": [str(d) for d in devices],
        **system_info(devices),
        "settings": {
            "runs": runs, "warmup": warmup, "fp16": config.fp16,
            "weights": str(config.weights) if config.weights else None, "threads": config.threads, "folder": config.folder,
            "backend": config.backend, "oneshot": config.oneshot,
            "video": config.video,
        },
        "models": {},
        "sizes": {},
        "stages": [],
        "floor": [],
        "totals": [],
        "peak_memory": [],
        "folder": None,
        "oneshot": None,
        "video": None,
        "notes": [],
    }
    stages = report["stages"]

    def record(stage: str, timing: Timing, *, size=None, device="cpu", model=None, precision=None, backend=None) -> Timing:
        entry = {"stage": stage, "size": size, "device": str(device), "model": model, "precision": precision, "backend": backend}
        stages.append({**entry, **timing.as_dict()})
        return timing

    def sync_for(device: torch.device):
        return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None

    with tempfile.TemporaryDirectory(prefix="harmcli-bench-") as tmp:
        tmp = Path(tmp)
        say("building models")
        harmonizers = {(d, s.name): build_harmonizer(s, config.weights, str(d)) for d in devices for s in specs}
        # Every engine timed: (device, model, backend) -> a harmonizer; ONNX ones run the same network, exported.
        engines = {}
        for (device, name), net in harmonizers.items():
            for backend in backends_for(device, config.backend):
                if backend == "onnx":
                    say(f"exporting {name} to ONNX")
                    engines[(device, name, backend)] = build_onnx_harmonizer(net, tmp, config.threads)
                else:
                    engines[(device, name, backend)] = net
        for spec in specs:
            net = harmonizers[(devices[0], spec.name)]
            report["models"][spec.name] = {
                "preset": net.model.config.name,
                "low_res": net.low_res,
                "parameters": int(sum(p.numel() for p in net.model.parameters())),
                "weights": str(config.weights) if config.weights else "untrained",
            }

        # The network sees only the low-res copy: time it once per device, model and precision.
        probe = make_scene(512, 512, config.seed)
        network_ms: dict[tuple, float] = {}
        for (device, name, backend), net in engines.items():
            inputs = net.low_res_inputs(*probe)
            for precision in precisions(device, config.fp16) if backend == "torch" else ["fp32"]:
                say(f"network {name} {precision} on {device} ({backend})")
                timing = time_call(network_call(net, inputs, precision), runs, warmup, sync_for(device))
                record("network", timing, device=device, model=name, precision=precision, backend=backend)
                network_ms[(device, name, precision, backend)] = timing.median_ms

        # The other stages at each full-res size. Decode, apply and encode run on the CPU whatever the device.
        scenes = {}
        for size in config.sizes:
            say(f"{size.name}: generating the scene")
            scene = scenes[size.name] = write_scene(size, tmp, config.seed)
            report["sizes"][size.name] = {
                "width": size.width, "height": size.height, "megapixels": round(size.pixels / 1e6, 2),
                "mask_coverage": round(scene.coverage, 3), "jpeg_bytes": scene.jpeg_bytes,
            }
            say(f"{size.name}: decode")
            decode = record("decode", time_call(lambda: read_image(scene.composite_path), runs, warmup), size=size.name)
            downsample = {}
            for (device, name, backend), net in engines.items():
                say(f"{size.name}: downsample for {name} on {device} ({backend})")
                call = lambda net=net: net.low_res_inputs(scene.composite, scene.background, scene.mask)  # noqa: E731
                timing = time_call(call, runs, warmup, sync_for(device))
                downsample[(device, name, backend)] = record(
                    "downsample", timing, size=size.name, device=device, model=name, backend=backend
                )
            say(f"{size.name}: apply")
            adjustment = synthetic_adjustment(next(iter(harmonizers.values())).low_res, config.seed)
            result = apply_adjustment(scene.composite, scene.mask, adjustment)
            timing = time_call(lambda: apply_adjustment(scene.composite, scene.mask, adjustment), runs, warmup)
            apply = record("apply", timing, size=size.name)
            table = np.random.default_rng(config.seed).integers(0, 256, 256).astype(np.uint8)
            floor = time_call(lambda: cv2.LUT(scene.composite, table), runs, warmup)
            ratio = apply.median_ms / max(floor.median_ms, 1e-9)
            report["floor"].append({"size": size.name, **floor.as_dict(), "apply_median_ms": apply.median_ms, "ratio": ratio})
            say(f"{size.name}: encode")
            jpeg = time_call(lambda: write_image(tmp / "out.jpg", result, jpeg_quality=JPEG_QUALITY), runs, warmup)
            record("encode_jpeg", jpeg, size=size.name)
            record("encode_png", time_call(lambda: write_image(tmp / "out.png", result), runs, warmup), size=size.name)
            for (device, name, precision, backend), net_ms in network_ms.items():
                shrink = downsample[(device, name, backend)].median_ms
                total = decode.median_ms + shrink + net_ms + apply.median_ms + jpeg.median_ms
                key = {"size": size.name, "device": str(device), "model": name, "precision": precision, "backend": backend}
                report["totals"].append({**key, "median_ms": total})
            scene.composite = scene.background = scene.mask = result = None  # keep the files, free the pixels

        if config.memory:
            largest = scenes[max(config.sizes, key=lambda s: s.pixels).name]
            for device in devices:
                for spec in specs:
                    say(f"peak memory: {largest.size.name}, {spec.name} on {device} (child process)")
                    figures = probe_in_child({
                        "composite": str(largest.composite_path), "mask": str(largest.mask_path), "output": str(tmp / "memory"),
                        "model": spec.name, "preset": spec.preset, "low_res": spec.low_res, "device": str(device),
                        "weights": str(config.weights) if config.weights else None, "threads": config.threads,
                    })
                    where = {"device": str(device), "model": spec.name, "size": largest.size.name}
                    report["peak_memory"].append({**where, **figures})

        if config.folder:
            # What `harmcli harmonize FOLDER` runs by default: ONNX Runtime on the CPU when it is timed, else torch.
            device, name = devices[0], specs[0].name
            backend = "onnx" if (device, name, "onnx") in engines else next(b for d, n, b in engines if (d, n) == (device, name))
            net = engines[(device, name, backend)]
            if backend == "onnx":  # the folder command's thread count for the network (one core for reading/writing)
                from harmcli.batch import default_threads

                net = build_onnx_harmonizer(harmonizers[(device, name)], tmp, config.threads or default_threads(True))
            report["folder"] = folder_mode(config, net, name, tmp, say)
            report["folder"]["backend"] = backend

        if config.oneshot:
            report["oneshot"] = oneshot_mode(config, tmp, say)

        if config.video:
            # The engine `harmcli harmonize clip.mp4` picks by default, as for the folder record.
            device, name = devices[0], specs[0].name
            backend = "onnx" if (device, name, "onnx") in engines else next(b for d, n, b in engines if (d, n) == (device, name))
            net = harmonizers[(device, name)]
            if backend == "onnx":
                from harmcli.batch import default_threads

                net = build_onnx_harmonizer(net, tmp, config.threads or default_threads(True))
            report["video"] = video_mode(config, net, name, tmp, say)
            report["video"]["backend"] = backend

    report["notes"] = _notes(config, report)
    return report


def _notes(config: BenchConfig, report: dict) -> list[str]:
    notes = [
        f"threads: torch {report['torch_threads']}, OpenCV {report['opencv_threads']} (apply uses as many); "
        "on a busy machine also try --threads 1: torch's thread barriers stall when a core is taken"
    ]
    if config.weights is None:
        notes.append("network: untrained model from create_model(); its speed does not depend on trained values")
    notes.append(
        "apply: a synthetic adjustment (32-point curves + smooth shading at the model's low-res), "
        "mask as harmcli reads it (float32)"
    )
    notes.append("floor: one cv2.LUT pass over the same 8-bit RGB image; ratio = apply median / floor median")
    if report["peak_memory"]:
        notes.append(
            "peak memory: a full harmonize (read, predict, apply, write JPEG) in a fresh process; "
            "RSS rise over the RSS with the model loaded"
        )
    if any(s["backend"] == "onnx" for s in report["stages"]):
        notes.append("onnx: the same network exported (harmcli export) and run by ONNX Runtime on the CPU")
    if report["oneshot"]:
        notes.append(
            "one-shot: wall time of whole processes (start to exit, the output written), interleaved; "
            "the plain script is harmcli/bench/plain_opencv.py"
        )
    if any(s["precision"] in ("fp16", "bf16") for s in report["stages"]):
        notes.append("fp16/bf16: torch.autocast (fp16 on CUDA, bf16 on CPU); outputs are converted back to float32")
    return notes
