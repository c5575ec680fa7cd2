"""``harmcli bench``: time every stage of a harmonize at several image sizes (a thin command over
:mod:`harmcli.bench`). Only Typer and the standard library at module level; torch, OpenCV and rich load inside.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import app, check_backend_name, check_device_name


DeviceOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto, cpu or cuda (cuda:N); repeat to compare. 'cuda' without a GPU is an error. \\[default: auto]",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--model",
        metavar="NAME",
        help="Preset, repeatable: lite, paper, or PRESET@RES for another low-res (lite@512). \\[default: lite]",
        show_default=False,
    ),
]
SizesOpt = Annotated[
    str, typer.Option("--sizes", metavar="LIST", help="Full-res sizes, comma-separated: 512, 720p, 1080p, 4k, 12mp, N or WxH.")
]
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        metavar="FILE",
        help="Time this weights file's network instead of an untrained preset (speed does not depend on trained values).",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--threads", metavar="N", help="Threads for torch and OpenCV (apply uses OpenCV's). \\[default: theirs]", show_default=False
    ),
]
Fp16Opt = Annotated[
    Optional[bool],
    typer.Option(
        "--fp16/--no-fp16",
        help="Also time the network under autocast (fp16 on CUDA, bf16 on CPU). \\[default: on CUDA only]",
        show_default=False,
    ),
]
FolderOpt = Annotated[
    int, typer.Option("--folder", metavar="N", help="Also time N 4K JPEGs end to end: a plain OpenCV loop (the floor) vs harmcli.")
]
VideoOpt = Annotated[
    int,
    typer.Option("--video", metavar="N", help="Also time N frames of a 1080p H.264 clip + mask video end to end (harmonize to H.264)."),
]
MemoryOpt = Annotated[
    bool, typer.Option("--memory/--no-memory", help="Measure the peak memory of a harmonize of the largest size (child process).")
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        metavar="NAME",
        help="Engine for the network: auto (every one the device has: torch, and ONNX Runtime on the CPU), onnx or torch.",
    ),
]
OneshotOpt = Annotated[
    bool,
    typer.Option(
        "--oneshot/--no-oneshot",
        help="Also time whole 'harmcli harmonize' processes on a 4K JPEG (start-up included) against a plain OpenCV "
        "script, and 'harmcli --help'.",
    ),
]
JsonOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--json", metavar="FILE", help="Write the results as JSON ('-': stdout, and the table goes to stderr).", show_default=False
    ),
]


@app.command("bench")
def bench_command(
    device: DeviceOpt = None,
    model: ModelOpt = None,
    sizes: SizesOpt = "512,1080p,4k,12mp",
    runs: Annotated[int, typer.Option("--runs", metavar="N", help="Timed runs per stage (median, min and max are shown).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", metavar="K", help="Untimed runs before the timed ones.")] = 1,
    weights: WeightsOpt = None,
    threads: ThreadsOpt = None,
    fp16: Fp16Opt = None,
    folder: FolderOpt = 0,
    video: VideoOpt = 0,
    memory: MemoryOpt = True,
    backend: BackendOpt = "auto",
    oneshot: OneshotOpt = True,
    json_path: JsonOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table and no progress; only --json output.")] = False,
) -> None:
    """Time decode, downsample, network, apply and encode at each size, with the apply floor (one cv2.LUT) and
    peak memory. Network timings use an untrained model unless --weights is given."""
    from rich.console import Console

    from harmcli.bench import BenchConfig, parse_sizes, render, run_bench
    from harmcli.errors import UsageError

    if weights is not None and model:
        raise UsageError("--weights names the network to time; leave out --model (or drop --weights to time presets)")
    config = BenchConfig(
        devices=[check_device_name(d) for d in device] if device else ["auto"],
        backend=check_backend_name(backend),
        oneshot=oneshot,
        models=model or ["lite"],
        sizes=parse_sizes(sizes),
        runs=runs,
        warmup=warmup,
        weights=weights,
        threads=threads,
        fp16=fp16,
        folder=folder,
        video=video,
        memory=memory,
    )
    config.check()
    to_stdout = json_path is not None and str(json_path) == "-"
    console = Console(stderr=to_stdout, highlight=False)
    if not console.is_terminal:  # a file or a pipe: rich would wrap the table at 80 columns
        console = Console(stderr=to_stdout, highlight=False, width=max(console.width, 140))
    status_console = Console(stderr=True, highlight=False)
    if quiet:
        report = run_bench(config)
    else:
        with status_console.status("bench: starting") as status:
            report = run_bench(config, progress=lambda message: status.update(f"bench: {message}"))
    if not quiet:
        for renderable in render(report):
            console.print(renderable)
    if json_path is not None:
        text = json.dumps(report, indent=2)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(text + "\n")
