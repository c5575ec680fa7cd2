"""One-shot runs: whole ``harmcli harmonize`` processes against the plain OpenCV script, start-up included.

What a shell loop pays per image is the process, not the stages: interpreter start, imports, loading the
network, then the work. Each run here is a fresh process, timed from its start to its exit (the output is
written just before exit), for: the plain script (:mod:`harmcli.bench.plain_opencv`), ``harmcli harmonize
COMPOSITE --mask MASK -o OUT.jpg`` on each backend, and ``harmcli --help``. The runs are interleaved, so that a
busy moment of a shared machine hits every command alike, and the median is reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harmcli.bench.config import BenchConfig, parse_sizes
from harmcli.bench.scenes import write_scene
from harmcli.errors import HarmcliError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def oneshot_mode(config: BenchConfig, tmp: Path, say) -> dict | None:
    """Time ``config.runs`` interleaved rounds of every one-shot command; None when no weights can be run."""
    from harmcli.onnx_backend import onnx_path_for, onnx_runtime_installed
    from harmcli.weights import default_weights_path

    weights = config.weights or default_weights_path()
    if weights is None:
        return None
    size = parse_sizes(config.oneshot_size)[0]
    folder = tmp / "oneshot"
    folder.mkdir()
    scene = write_scene(size, folder, config.seed + 100, stem="composite")
    composite, mask = str(scene.composite_path), str(scene.mask_path)
    low_res = _low_res(weights)
    commands = {"plain_opencv": [str(Path(__file__).with_name("plain_opencv.py")), composite, mask, str(folder / "plain.jpg"), str(low_res)]}
    backends = ["torch"] if config.backend == "torch" else ["onnx"] if config.backend == "onnx" else ["torch", "onnx"]
    if "onnx" in backends and not (onnx_runtime_installed() and (weights.suffix == ".onnx" or onnx_path_for(weights).is_file())):
        backends.remove("onnx")
    for backend in backends:
        argv = ["-m", "harmcli", "harmonize", composite, "--mask", mask, "-o", str(folder / f"{backend}.jpg")]
        argv += ["--overwrite", "-q", "--backend", backend, "--device", "cpu", "--weights", str(weights)]
        commands[backend] = argv + (["--threads", str(config.threads)] if config.threads else [])
    commands["help"] = ["-m", "harmcli", "--help"]

    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(config.warmup):  # the first start of a process reads its files from disk
        for argv in commands.values():
            _run(argv)
    for round_ in range(config.runs):
        for name, argv in commands.items():
            say(f"one-shot {size.name}: {name}, run {round_ + 1} of {config.runs}")
            seconds[name].append(_run(argv))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "size": size.name, "runs": config.runs, "weights": str(weights), "low_res": low_res,
        "commands": {name: " ".join(["python", *argv]) for name, argv in commands.items()},
        "seconds": {name: {"median": medians[name], "min": min(v), "max": max(v)} for name, v in seconds.items()},
        "ratio": {b: medians[b] / max(medians["plain_opencv"], 1e-9) for b in backends},
    }


def _low_res(weights: Path) -> int:
    if weights.suffix.lower() == ".onnx":
        from harmcli.onnx_backend import OnnxNetwork

        return OnnxNetwork(weights).low_res
    from harmcli.weights import read_metadata

    return int(read_metadata(weights)["config"]["low_res"])


def _run(argv: list[str]) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarmcliError(f"bench: one-shot run failed ({' '.join(argv[:4])} ...): {last}")
    return elapsed
