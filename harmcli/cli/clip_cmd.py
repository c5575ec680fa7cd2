"""``harmcli harmonize`` for videos and ``--sequence`` frame folders: checks, progress, the flicker line.

Called by :mod:`harmcli.cli.harmonize_cmd` when an input is a video file or ``--sequence`` is given; the work
is done by :func:`harmcli.clip.run.harmonize_clip`.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

TEMPORAL_RANGE = (0.0, 1.0)


def parse_fps(text: str | None) -> Fraction | None:
    from harmcli.errors import UsageError

    if text is None:
        return None
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--fps must be a number or a ratio such as 30000/1001, not '{text}'") from None
    if value <= 0 or value > 1000:
        raise UsageError(f"--fps must be between 0 and 1000, got {text}")
    return value


def check_clip_only_options(*, temporal, codec, crf, fps, report, sequence) -> None:
    """Clip options given for still images are a usage error (the image path would silently ignore them)."""
    from harmcli.errors import UsageError

    given = [name for name, value in (("--temporal", temporal), ("--codec", codec), ("--crf", crf), ("--fps", fps),
                                      ("--report", report)) if value is not None]
    if given and not sequence:
        raise UsageError(f"{', '.join(given)} apply to video inputs or --sequence folders only")


def run_clip(
    *, reporter, spec, output: Path, sequence: bool, temporal: float | None, codec: str | None, crf: int | None,
    fps: str | None, report: Path | None, ext: str | None, jpeg_quality: int, existing: str, max_pixels: int,
    params: Path | None, weights: Path | None, device: str, threads: int | None, strength: float,
    shading_strength: float, save_params: Path | None, quiet: bool, backend: str = "auto", flip_average: bool = True,
    strip_metadata: bool = False, placement=None,
) -> None:
    """``placement``: a :class:`~harmcli.batch.Placement` (``--at``, ``--scale``) that puts a foreground clip of
    another size on its background, frame by frame; None = every input has the same size."""
    from harmcli.clip.run import DEFAULT_TEMPORAL, existing_outputs, harmonize_clip, plan_clip_output
    from harmcli.clip.sources import ClipInputs
    from harmcli.errors import ImageWriteError, UsageError

    if save_params is not None:
        raise UsageError("--save-params is for one image; a clip's adjustment changes every frame (use --report for numbers)")
    if params is not None and temporal is not None:
        raise UsageError("--params applies one fixed adjustment to every frame: there is nothing to smooth (drop --temporal)")
    temporal = DEFAULT_TEMPORAL if temporal is None else temporal
    lo, hi = TEMPORAL_RANGE
    if not lo <= temporal <= hi:
        raise UsageError(f"--temporal must be between {lo:g} and {hi:g}, got {temporal:g}")
    rate = parse_fps(fps)
    spec.check_exists()
    inputs = ClipInputs(spec, sequence=sequence, max_pixels=max_pixels, placement=placement)
    if rate is not None and inputs.rate is not None:
        raise UsageError(f"--fps is for frame folders; {inputs.timing.path} has its own rate")
    out = plan_clip_output(
        inputs, output, codec=codec, crf=crf, ext=ext, fps=rate, jpeg_quality=jpeg_quality, protect=(params, weights, report)
    )
    if report is not None and report.suffix.lower() != ".json":
        raise UsageError(f"--report {report}: the report is a .json file")
    out.overwrite = existing == "overwrite"
    out.strip_metadata = strip_metadata
    found = existing_outputs(inputs, out)
    if found:
        if existing == "skip":
            reporter.info(f"skipped: {found[0]} exists (--skip-existing)")
            return
        if existing == "error":
            raise ImageWriteError(f"{found[0]}: already exists; pass --overwrite to replace it or --skip-existing to keep it")
    for lossy in inputs.lossy_masks():
        reporter.warn(
            f"{lossy} is a lossy mask video: compression noise around the object is read as faint mask, so pixels just "
            "outside it change slightly; encode masks losslessly (--codec ffv1, PNG frames) to keep the background exact"
        )

    harmonizer = fixed = None
    if params is not None:
        from harmcli.io.adjustment_files import load_adjustment

        fixed = load_adjustment(params)
    else:
        from harmcli.batch import default_threads
        from harmcli.pipeline import load_harmonizer

        notes: list[str] = []
        # As in folder mode: one core is left to the reader and writer threads (decoding, encoding).
        harmonizer = load_harmonizer(weights, device, backend, threads or default_threads(True), notes, flip_average)
        for note in notes:
            reporter.warn(note)

    with _progress(reporter, quiet) as on_progress:
        result = harmonize_clip(
            inputs, out, harmonizer=harmonizer, fixed=fixed, temporal=temporal, strength=strength,
            shading_strength=shading_strength, fps=rate, on_progress=on_progress,
        )
    for note in result.notes:
        reporter.warn(note)
    speed = result.frames / result.seconds if result.seconds else 0.0
    codec = f" ({out.codec.label})" if out.is_video and out.codec is not None else ""  # the default follows the source
    reporter.info(f"wrote {result.output}{codec}: {result.frames} frames in {result.seconds:.1f} s ({speed:.1f} frames/s)")
    if result.flicker_smoothed is not None:
        cuts = f"; {len(result.cuts)} scene cut{'s' if len(result.cuts) != 1 else ''}" if result.cuts else ""
        reporter.info(
            f"flicker, mean change per frame in code values, per frame -> with --temporal {temporal:g}: the foreground's "
            f"correction {result.flicker_per_frame:.2f} -> {result.flicker_smoothed:.2f}, its colour "
            f"{result.output_flicker_per_frame:.2f} -> {result.output_flicker_smoothed:.2f} (input {result.input_flicker:.2f}); "
            f"the background's correction {result.background_flicker:.2f}, its colour {result.scene_change:.2f}{cuts}"
        )
    if report is not None:
        from harmcli.io.images import atomic_write

        text = json.dumps({"schema": "harmcli-clip/1", **result.to_json()}, indent=2)
        atomic_write(report, lambda fh: fh.write(text.encode()))


class _progress:
    """A two-phase progress bar on a terminal (analyse, then write) with frames/s and the time left."""

    def __init__(self, reporter, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=reporter.console,
            disable=quiet or not reporter.console.is_terminal,
            transient=True,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self.update

    def update(self, phase: str, done: int, total: int | None) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total, speed="")
        task_id = self.tasks[phase]
        task = self.progress.tasks[task_id]
        elapsed = task.elapsed or 0.0
        speed = f"{done / elapsed:.1f} frames/s" if elapsed > 0 else ""
        self.progress.update(task_id, completed=done, total=total, speed=speed)

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)
