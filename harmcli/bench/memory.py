"""Peak memory of one full harmonize, measured in a fresh child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import torch

from harmcli.bench.config import ModelSpec
from harmcli.bench.networks import build_harmonizer
from harmcli.bench.runners import batch_runner, loop_runner
from harmcli.errors import HarmcliError


def memory_probe(payload: dict) -> dict:
    """Run in a fresh process: one full harmonize of the files in ``payload``; returns the memory figures.

    The peak is the RSS high-water mark, reset just before the harmonize where Linux allows it. ``ru_maxrss``
    alone is not enough there: a child started by ``subprocess`` inherits its parent's high-water mark
    through fork/exec, so it would report the (large) benchmark process instead.
    """
    if payload.get("threads"):
        torch.set_num_threads(payload["threads"])
        cv2.setNumThreads(payload["threads"])
    spec = ModelSpec(payload["model"], payload["preset"], payload["low_res"])
    harmonizer = build_harmonizer(spec, Path(payload["weights"]) if payload["weights"] else None, payload["device"])
    cuda = harmonizer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(harmonizer.device)
        torch.cuda.reset_peak_memory_stats(harmonizer.device)
    output = Path(payload["output"])
    output.mkdir(parents=True, exist_ok=True)
    composite, mask = Path(payload["composite"]), Path(payload["mask"])
    run = batch_runner(harmonizer, composite, mask, output) or loop_runner(harmonizer, [(composite, mask)], output)
    baseline = _proc_status_mib("VmRSS")
    exact = baseline is not None and _reset_peak_rss()
    if not exact:  # no /proc: ru_maxrss so far is the best baseline there is (an upper bound on the rise follows)
        baseline = _max_rss_mib()
    run()
    peak = _proc_status_mib("VmHWM") if exact else _max_rss_mib()
    return {
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(peak, 1),
        "rss_increase_mib": round(max(0.0, peak - baseline), 1),
        "method": "VmHWM reset before the harmonize" if exact else "ru_maxrss",
        "cuda_max_allocated_mib": round(torch.cuda.max_memory_allocated(harmonizer.device) / 2**20, 1) if cuda else None,
    }


def probe_in_child(payload: dict) -> dict:
    code = "import json, sys\nfrom harmcli.bench.memory import memory_probe\nprint(json.dumps(memory_probe(json.loads(sys.argv[1]))))"
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-c", code, json.dumps(payload)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarmcliError(f"bench: the peak-memory child process failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _proc_status_mib(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status (Linux), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _max_rss_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
