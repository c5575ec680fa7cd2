"""``harmcli render``: rendered harmonization pairs (Blender Cycles)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import app


@app.command("render")
def render_command(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for the renders, pairs and manifest.jsonl (resumes if it exists).", show_default=False)
    ],
    scenes: Annotated[int, typer.Option(min=1, help="Number of scenes (each: every style + masks).")] = 10,
    size: Annotated[int, typer.Option(min=16, help="Frame size in pixels (square).")] = 256,
    samples: Annotated[int, typer.Option(min=1, help="Cycles samples per pixel (denoised).")] = 4,
    objects: Annotated[int, typer.Option(min=1, max=6, help="Most foreground objects per scene (1..N each).")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same scenes.")] = 0,
    styles: Annotated[
        Optional[str], typer.Option(metavar="A,B,...", help="Render only these styles (comma-separated). \\[default: all ten]", show_default=False)
    ] = None,
    pairs: Annotated[int, typer.Option(min=1, help="Composites per object and background style (each with another foreground style).")] = 1,
    bounces: Annotated[int, typer.Option(min=0, max=12, help="Light bounces.")] = 2,
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Do not denoise (needs many more samples).")] = False,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=1.0, help="Share of scenes held out (by name hash).")] = 0.1,
    split: Annotated[
        str, typer.Option("--split", metavar="all|train|val", help="Render only the scenes of one split (of the first "
                          "--scenes): e.g. val, to evaluate on the held-out scenes without rendering the rest.")
    ] = "all",
    device: Annotated[str, typer.Option(help="cpu, cuda (a CUDA/OptiX GPU for Cycles) or auto.")] = "cpu",
    threads: Annotated[int, typer.Option(min=0, help="CPU threads for Cycles (0: all cores).")] = 0,
    sheet: Annotated[
        Optional[Path], typer.Option(metavar="FILE.png", help="Also write a contact sheet: one row per scene, its styles side by side.", show_default=False)
    ] = None,
    sheet_scenes: Annotated[int, typer.Option("--sheet-scenes", min=1, help="Scenes on the contact sheet (the first N finished).")] = 6,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Render procedural 3D scenes under ten lighting styles with Blender Cycles and write harmonization pairs
    (composite = one object from style a + the rest from style b; target = the style-b render).

    Needs the render extra (Blender's bpy). Running again on the same folder skips finished scenes; two runs on
    one folder share the scenes between them.
    """
    import time

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from harmcli.cli.app import check_device_name
    from harmcli.render.dataset import RenderOptions, contact_sheet, render_dataset
    from harmcli.render.styles import STYLES

    device = check_device_name(device)
    if sheet is not None and sheet.suffix.lower() != ".png":
        from harmcli.errors import UsageError

        raise UsageError(f"--sheet must be a .png file, not '{sheet}'")
    chosen = tuple(s.strip() for s in styles.split(",") if s.strip()) if styles else STYLES
    options = RenderOptions(scenes=scenes, size=size, samples=samples, objects=objects, seed=seed, styles=chosen, pairs=pairs,
                            bounces=bounces, denoise=not no_denoise, val_fraction=val_fraction, device=device, threads=threads,
                            only_split=None if split == "all" else split)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    steps_per_scene = len(chosen) + 1
    with Progress(TextColumn("[bold]render"), BarColumn(), MofNCompleteColumn(), TextColumn("scenes"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"), console=console,
                  disable=quiet or not console.is_terminal,
                  transient=False) as progress:
        task = progress.add_task("", total=None)
        state = {"done": 0, "todo": 0}
        # Without a terminal (a log file) the bar cannot redraw: one line per scene instead.
        log_lines = not quiet and not console.is_terminal

        def on_start(todo: int, skipped: int) -> None:
            state["todo"] = todo
            progress.update(task, total=todo, completed=0)
            if skipped and not quiet:
                console.print(f"{skipped} finished scene(s) in {escape(str(output))} skipped")

        def on_step(name: str, style: str) -> None:
            step = len(chosen) if style == "masks" else chosen.index(style)
            progress.update(task, completed=state["done"] + step / steps_per_scene, description=f"{name} {style}")

        def on_scene(record: dict) -> None:
            state["done"] += 1
            if record.get("elsewhere"):  # another run on this folder has it
                state["todo"] -= 1
                state["done"] -= 1
                progress.update(task, total=state["todo"], completed=state["done"])
                return
            progress.update(task, completed=state["done"], description=f"{record['scene']} done ({record['seconds']:.1f} s)")
            if log_lines:
                elapsed = time.perf_counter() - started
                eta = elapsed / state["done"] * (state["todo"] - state["done"])
                console.print(f"{state['done']}/{state['todo']} {record['scene']}: {record['pairs']} pairs, {record['seconds']:.1f} s; "
                              f"elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")

        summary = render_dataset(output, options, on_start=on_start, on_step=on_step, on_scene=on_scene)
    if sheet is not None:
        contact_sheet(output, sheet, limit=sheet_scenes)
    if not quiet:
        per_scene = f", {summary.seconds / len(summary.rendered):.1f} s per scene" if summary.rendered else ""
        elsewhere = f", {len(summary.elsewhere)} left to another run" if summary.elsewhere else ""
        console.print(f"rendered {len(summary.rendered)} scene(s), skipped {len(summary.skipped)}{elsewhere} in {time.perf_counter() - started:.0f} s"
                      f"{per_scene}; {summary.pairs} pairs in {escape(str(output))}/manifest.jsonl"
                      + (f"; contact sheet {escape(str(sheet))}" if sheet is not None else ""))
