"""What the report says about the machine: CPU, GPU, thread counts and versions."""

from __future__ import annotations

import os
import platform

import cv2
import numpy as np
import torch

from harmcli import __version__


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def system_info(devices: list[torch.device]) -> dict:
    gpu = None
    cuda = next((d for d in devices if d.type == "cuda"), None)
    if cuda is not None:
        props = torch.cuda.get_device_properties(cuda)
        gpu = {"name": props.name, "memory_mib": round(props.total_memory / 2**20, 1)}
    return {
        "torch_threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "cpu": {"name": _cpu_name(), "logical_cores": os.cpu_count() or 1, "machine": platform.machine()},
        "gpu": gpu,
        "versions": {
            "harmcli": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
        },
    }
