"""``harmcli eval``: score harmcli and the classical baselines on a dataset, as the field reports them.

Only Typer and the standard library at module level: NumPy, OpenCV, torch and rich load inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import BACKEND_HELP, FLIP_HELP, app, check_backend_name, check_device_name

_FORMATS = {"MSE": ".2f", "fMSE": ".2f", "PSNR": ".2f", "fPSNR": ".2f", "SSIM": ".4f"}


@app.command("eval")
def eval_command(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="Dataset folder: an iHarmony4 subset (composite_images/, masks/, real_images/), the iHarmony4 root, "
            "composites/, masks/, gt/ (optional backgrounds/) matched by file name, or a make-composites or render "
            "output (manifest.jsonl; its val split unless --split says otherwise).",
            metavar="DATASET",
            show_default=False,
        ),
    ],
    method: Annotated[
        Optional[list[str]],
        typer.Option(
            "--method",
            "-m",
            metavar="NAME",
            help="Method to score, repeat or comma-separate: harmcli, identity, reinhard, hist. "
            "\\[default: all four]",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Optional[Path],
        typer.Option("--weights", "-w", metavar="FILE", help="Weights for --method harmcli (default: the shipped ones)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", metavar="DEVICE", help="Device for harmcli: auto, cpu or cuda.")] = "auto",
    backend: Annotated[str, typer.Option("--backend", metavar="NAME", help=BACKEND_HELP)] = "auto",
    no_flip_average: Annotated[bool, typer.Option("--no-flip-average", help=FLIP_HELP)] = False,
    size: Annotated[
        Optional[int],
        typer.Option(
            "--size",
            min=8,
            metavar="N",
            help="Resize every image to N x N first (256: the iHarmony4 protocol). \\[default: native]",
        ),
    ] = None,
    split: Annotated[
        Optional[str],
        typer.Option(
            "--split",
            metavar="FILE",
            help="iHarmony4 list file to use: a path, or e.g. 'train' for *_train.txt, or 'all' for every composite. "
            "\\[default: the *_test.txt]",
        ),
    ] = None,
    kind: Annotated[
        Optional[list[str]],
        typer.Option(
            "--kind",
            metavar="KIND",
            help="make-composites folders: score only samples of this kind of mismatch (retouch, transfer, illuminant, "
            "pairs, rendered); repeat or comma-separate. \\[default: all]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", min=1, metavar="N", help="Score only the first N images (by name).")
    ] = None,
    json_path: Annotated[
        Optional[Path], typer.Option("--json", metavar="FILE", help="Write the summary and per-image metrics as JSON.")
    ] = None,
    csv_path: Annotated[
        Optional[Path], typer.Option("--csv", metavar="FILE", help="Write one row per image per method as CSV.")
    ] = None,
    grid: Annotated[
        Optional[Path],
        typer.Option(
            "--grid",
            metavar="FILE",
            help="Write a picture (.png/.jpg) of the 3 worst and 3 best images by the first method's fMSE.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or notes on stderr (the table still prints).")
    ] = False,
) -> None:
    """Score methods side by side on a dataset: MSE, fMSE, PSNR, fPSNR, SSIM (0-255 scale, as in iHarmony4)."""
    from rich.console import Console

    from harmcli.errors import UsageError, WeightsError
    from harmcli.data.layouts import discover
    from harmcli.eval.runner import GridCollector, build_methods, parse_methods, save_csv, save_grid, save_json

    names = parse_methods(method)
    device = check_device_name(device)
    backend = check_backend_name(backend)
    if weights is not None and "harmcli" not in names:
        raise UsageError("--weights is only used by --method harmcli, which is not among the methods asked for")
    if grid is not None and grid.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"{grid}: --grid must end in .png or .jpg")
    named = (("--json", json_path), ("--csv", csv_path), ("--grid", grid))
    outputs = [(option, path) for option, path in named if path is not None]
    for option, path in outputs:
        if path.is_dir():
            raise UsageError(f"{option} {path}: is a folder; give a file name")
        # Checked now rather than after a long run: a parent that is a file cannot become a folder.
        blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocking is not None:
            raise UsageError(f"{option} {path}: {blocking} is a file, not a folder")

    kinds = tuple(dict.fromkeys(part.strip().lower() for value in (kind or []) for part in value.split(",") if part.strip()))
    items = discover(dataset, split, kinds or None)
    if limit is not None:
        items = items[:limit]
    _refuse_overwriting_inputs(outputs, items)
    try:
        methods = build_methods(names, weights=weights, device=device, backend=backend, flip_average=not no_flip_average)
    except WeightsError as exc:
        if weights is None:
            raise WeightsError(f"{exc} (or leave harmcli out: --method identity,reinhard,hist)") from None
        raise

    err = Console(stderr=True, highlight=False)
    collector = GridCollector(names[0]) if grid is not None else None
    result = _run(items, methods, size, str(dataset), collector, show=not quiet and sys.stderr.isatty())

    _print_table(result)
    written = []
    if json_path is not None:
        written.append(save_json(result, json_path))
    if csv_path is not None:
        written.append(save_csv(result, csv_path))
    if grid is not None:
        picture = collector.render()
        if picture is None:
            if not quiet:
                err.print(f"[yellow]note:[/] no picture written to {grid}: no image has a foreground to rank")
        else:
            written.append(save_grid(picture, grid))
    if not quiet:
        for path in written:
            err.print(f"wrote {path}")


def _refuse_overwriting_inputs(outputs, items) -> None:
    """The dataset is never written to: no report may land on one of its images."""
    from harmcli.batch import same_file
    from harmcli.errors import ImageWriteError

    for option, path in outputs:
        if not path.exists():
            continue
        for item in items:
            inputs = (item.composite_path, item.mask_path, item.target_path, item.background_path)
            # The name test first keeps this cheap for tens of thousands of items.
            if any(source is not None and source.name == path.name and same_file(path, source) for source in inputs):
                raise ImageWriteError(
                    f"{option} {path}: this is an input of the dataset; choose another file (inputs are never overwritten)"
                )


def _run(items, methods, size, dataset, collector, *, show: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from harmcli.eval.runner import evaluate

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not show) as progress:
        task = progress.add_task("evaluating", total=len(items))
        return evaluate(
            items,
            methods,
            size=size,
            dataset=dataset,
            progress=lambda done, total, name: progress.update(task, completed=done),
            on_item=collector,
        )


def _print_table(result) -> None:
    import math

    from rich.console import Console
    from rich.table import Table

    from harmcli.eval.metrics import HIGHER_IS_BETTER, METRICS, PSNR_CAP

    resolution = f"{result.size}x{result.size}" if result.size else "native resolution"
    table = Table(title=f"{result.dataset}: {len(result.images)} images, {resolution}", title_justify="left")
    table.add_column("method")
    for metric in METRICS:
        table.add_column(f"{metric} {'↑' if HIGHER_IS_BETTER[metric] else '↓'}", justify="right")
    best = {}
    for metric in METRICS:
        values = [result.summary[m][metric] for m in result.methods if not math.isnan(result.summary[m][metric])]
        if values and len(result.methods) > 1:
            best[metric] = max(values) if HIGHER_IS_BETTER[metric] else min(values)
    console = Console(highlight=False)
    # Colour marks the best value in a terminal; in a log or a pipe a star does.
    star = "" if console.color_system else " *"
    for name in result.methods:
        cells = []
        for metric in METRICS:
            value = result.summary[name][metric]
            text = "–" if math.isnan(value) else format(value, _FORMATS[metric])
            cells.append(f"[bold green]{text}{star}[/]" if best.get(metric) == value else text)
        table.add_row(name, *cells)
    notes = [f"PSNR/fPSNR per image capped at {PSNR_CAP:g} dB"]
    if result.empty_foreground:
        notes.append(f"{result.empty_foreground} image(s) with an empty mask left out of fMSE/fPSNR")
    if star and best:
        notes.append("* best")
    table.caption = "; ".join(notes)
    console.print(table)
