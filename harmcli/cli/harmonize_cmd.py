"""``harmcli harmonize`` and ``harmcli curves``: thin commands over :mod:`harmcli.batch`.

Both take the same inputs: ``FG BG MASK``, ``FG BG`` (mask = FG's alpha), ``COMPOSITE --mask MASK`` or a layered
``FILE.psd`` alone (``--layer`` picks its subject; see :mod:`harmcli.io.psd`); any of them may be a folder (items
matched by file stem; a folder given alone is read for its .psd files). ``--at`` / ``--scale`` place a foreground of
another size on its background (images; with ``harmonize``, clips too, frame by frame). Only Typer and the standard
library are imported here at module level; everything heavy is imported inside the commands, so ``harmcli --help``
never loads torch.

Option values are checked here rather than through Typer's ``min``/``max``, so that a bad value is a
:class:`~harmcli.errors.UsageError` (one line, exit 2) whose message names the option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import BACKEND_HELP, FLIP_HELP, app, check_backend_name, check_device_name

# Kept in step with harmcli.io by a test: importing harmcli.io here would load OpenCV for `harmcli --help`.
CURVES_FORMATS = ("json", "cube", "acv", "tif", "png")
DEFAULT_MAX_PIXELS = 100_000_000
STRENGTH_RANGE = (0.0, 2.0)

Inputs = Annotated[
    Optional[list[Path]],
    typer.Argument(
        help="FG BG MASK, FG BG (FG's alpha is the mask), COMPOSITE with --mask, or a layered FILE.psd alone (its top "
        "visible pixel layer over the layers below). Any of them may be a folder: items are matched by file stem, and a "
        "single file beside folders is used for every item.",
        metavar="INPUT",
        show_default=False,
    ),
]
MaskOpt = Annotated[
    Optional[Path],
    typer.Option("--mask", "-m", help="The mask of a COMPOSITE (or of FG BG); file or folder.", show_default=False),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (cuda:N); cuda without a GPU is an error.")]
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        help="A harmcli .safetensors weights file, or its ONNX export (default: the shipped one).",
        show_default=False,
    ),
]
BackendOpt = Annotated[str, typer.Option("--backend", metavar="NAME", help=BACKEND_HELP)]
NoFlipOpt = Annotated[bool, typer.Option("--no-flip-average", help=FLIP_HELP)]
StrengthOpt = Annotated[float, typer.Option("--strength", help="Curves, 0..2: 0 = off, 1 = as predicted, 2 = double.")]
ShadingOpt = Annotated[
    float, typer.Option("--shading-strength", help="Shading map, 0..2: 0 = off, 1 = as predicted, 2 = double.")
]
SkipOpt = Annotated[bool, typer.Option("--skip-existing", help="Leave existing outputs alone and skip those items.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (inputs: never).")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", help="Refuse larger inputs (a decompression-bomb guard).")]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--threads", help="CPU threads for the network (default: all cores; one fewer for folders).", show_default=False
    ),
]
AtOpt = Annotated[
    Optional[str],
    typer.Option(
        "--at",
        metavar="X,Y",
        help="FG BG [MASK] of different sizes: put the foreground's top-left corner at pixel X,Y of the background "
        "(integers, negative allowed; what falls outside is cut off), or 'center'. The composite and the output then "
        "have the background's size.",
        show_default=False,
    ),
]
ScaleOpt = Annotated[
    Optional[float],
    typer.Option(
        "--scale",
        help="With --at: resize the foreground and its mask by this factor (> 0; default 1) before placing them.",
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary; warnings and errors only.")]
LayerOpt = Annotated[
    Optional[str],
    typer.Option(
        "--layer",
        metavar="NAME",
        help="A .psd input: the layer to harmonize (default: the top visible pixel layer); the visible layers below it "
        "are its background.",
        show_default=False,
    ),
]


class _Reporter:
    """Everything the commands print goes to stderr, one line per message; stdout stays free for pipes.

    rich (about 30 ms to import) is loaded only for a coloured line or a progress bar: a one-shot harmonize that
    succeeds prints plain text or nothing.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    def _print(self, style: str, message: str) -> None:
        if not style:  # plain text: what rich would print for an unstyled, escaped message
            import sys

            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            return
        from rich.markup import escape

        self.console.print(f"{style}{escape(message)}")

    def warn(self, message: str) -> None:
        self._print("[yellow]warning:[/] ", message)

    def failed(self, message: str) -> None:
        self._print("[bold red]failed:[/] ", message)

    def info(self, message: str) -> None:
        if not self.quiet:
            self._print("", message)


# Mask files whose compression leaves non-zero noise where the mask should be 0.
LOSSY_MASK_SUFFIXES = (".jpg", ".jpeg", ".webp", ".heic", ".heif", ".hif", ".avif")


def _check_options(
    inputs, output, *, strength, shading_strength, max_pixels, threads, skip_existing, overwrite, device, backend="auto"
):
    """What can be wrong before any file is looked at. Returns the existing-output policy, device and backend."""
    from harmcli.errors import UsageError

    if not inputs:
        raise UsageError("give the inputs: FG BG MASK, FG BG (FG with alpha), or COMPOSITE --mask MASK")
    if output is None:
        raise UsageError("-o/--output is required: an output file, or a folder for folder inputs")
    lo, hi = STRENGTH_RANGE
    for name, value in (("--strength", strength), ("--shading-strength", shading_strength)):
        if not lo <= value <= hi:
            raise UsageError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
    if max_pixels < 1:
        raise UsageError(f"--max-pixels must be a positive number of pixels, got {max_pixels}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    if skip_existing and overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other; give one")
    existing = "skip" if skip_existing else "overwrite" if overwrite else "error"
    return existing, check_device_name(device), check_backend_name(backend)


def _placement(at: str | None, scale: float | None, spec):
    """--at / --scale as a :class:`~harmcli.batch.Placement` (None when not given); they need a foreground and a
    background (a COMPOSITE is already pasted)."""
    from harmcli import batch
    from harmcli.errors import UsageError

    placement = batch.Placement.from_args(at, scale)
    if placement is not None and spec.form == "composite":
        raise UsageError(
            f"{_placement_options(scale)} for FG BG [MASK] inputs (they place a foreground on a background); "
            "a COMPOSITE with --mask is already pasted"
        )
    if placement is not None and spec.form == "psd":
        raise UsageError(
            f"{_placement_options(scale)} for FG BG [MASK] inputs; a .psd's subject layer is placed where it lies in the "
            "document"
        )
    return placement


def _check_psd(spec, layer: str | None) -> None:
    """--layer needs a .psd, and a .psd needs psd-tools (said once, before any item is read)."""
    from harmcli.errors import UsageError

    if spec.form != "psd":
        if layer is not None:
            raise UsageError("--layer picks the subject layer of a .psd input; the inputs here are not .psd files")
        return
    if layer is not None and not layer.strip():
        raise UsageError("--layer needs a layer name")
    from harmcli.io import psd

    psd.require()


def _placement_options(scale: float | None) -> str:
    return "--at and --scale are" if scale is not None else "--at is"


def _run(job, spec, layout, reader, *, quiet: bool, verb: str, sheet: Path | None = None) -> None:
    """One item: any problem raises. Folders: a progress bar, a line per bad item, a summary, exit 1 on failures.

    ``sheet``: harmonize --sheet's file; checked with the plan, before any item is processed."""
    from harmcli import batch
    from harmcli.errors import HarmcliError
    from harmcli.io.images import READ_EXTENSIONS

    report = _Reporter(quiet)
    plan = batch.match_items(spec, READ_EXTENSIONS)
    lossy_masks = [item.mask for item in plan.items if item.mask is not None and item.mask.suffix.lower() in LOSSY_MASK_SUFFIXES]
    if lossy_masks:
        # Read as soft masks, JPEG's ringing around the object edge is faint foreground: pixels there change a
        # little, so "the background is untouched" only holds up to that noise. Say so once, not once per item.
        which = f"{lossy_masks[0]} and {len(lossy_masks) - 1} more masks are" if len(lossy_masks) > 1 else f"{lossy_masks[0]} is"
        report.warn(
            f"{which} lossy "
            "(JPEG/WebP/HEIC/AVIF): compression noise around the object is read as faint mask, so pixels just outside it change "
            "slightly; save masks as PNG or TIFF to keep the background bit for bit"
        )
    contact = _open_sheet(sheet, job, spec, plan, layout, report)
    _remove_stale_temp_files(layout, report)
    if not spec.is_folder:
        out, _ = layout.output_for(plan.items[0])
        before = _file_identity(out)
        try:
            result = batch.run_one(job, plan.items[0])
        except KeyboardInterrupt:
            # The stop may land after the file got its name (the window is small but real): look, don't guess.
            written = _file_identity(out) not in (None, before)
            report.info(f"{out}: {'written before the stop' if written else 'not written (stopped before it was complete)'}")
            raise
        finally:
            _report_notes(job, report)
        sheet_errors = contact.complete(result) if contact is not None else []
        if result.status == "skipped":
            report.info(f"skipped: {result.message}")
        else:
            if result.message:
                report.warn(result.message)
            report.info(f"wrote {', '.join(str(p) for p in result.outputs)} in {result.seconds:.1f} s")
        if sheet_errors:
            raise HarmcliError(sheet_errors[0])
        if contact is not None:
            report.info(contact.describe())
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    for unmatched in plan.unmatched:
        report.warn(unmatched.describe())
    reader.preload(spec)
    for note in reader.shared_notes:
        report.warn(note)
    progress = Progress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=report.console,
        disable=quiet or not report.console.is_terminal,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=len(plan.items) + len(plan.failures))

        def on_result(result) -> None:
            if result.status == "failed":
                report.failed(result.message)
            elif result.status == "done" and result.message:
                report.warn(result.message)
            if contact is not None:  # writes a page of the sheet once its last item is in
                for error in contact.complete(result):
                    report.failed(error)
            progress.advance(task)

        try:
            summary = batch.run_batch(job, plan, on_result=on_result)
        except KeyboardInterrupt as interrupt:
            done = getattr(interrupt, "summary", None)
            if done is not None:
                progress.stop()
                not_started = len(plan.items) + len(plan.failures) - len(done.results)
                report.info(f"{layout.path}: {done.line()}; {not_started} not started (interrupted)")
                if contact is not None and contact.written:  # finished pages are whole files; the rest is not written
                    report.info(f"{contact.describe()}; interrupted: pages whose items were not all finished are not written")
            raise
        if contact is not None:
            for error in contact.close():
                report.failed(error)
    _report_notes(job, report)
    report.info(f"{layout.path}: {summary.line()}")
    if contact is not None:
        report.info(contact.describe())
    if summary.failed:
        # A HarmcliError rather than typer.Exit: the app turns it into one red line and exit code 1.
        total = len(summary.results)
        if summary.count("done") == 0:
            if contact is not None and contact.written:
                raise HarmcliError(f"{summary.failed} of {total} items failed (see above); no output was written, only the contact sheet")
            raise HarmcliError(f"{summary.failed} of {total} items failed (see above); nothing was written")
        raise HarmcliError(f"{summary.failed} of {total} items failed (see above); the others are in {layout.path}")
    if contact is not None and contact.errors:
        raise HarmcliError(f"the contact sheet could not be written (see above); the outputs are in {layout.path}")


def _open_sheet(sheet: Path | None, job, spec, plan, layout, report: _Reporter):
    """harmonize --sheet's :class:`~harmcli.batch.ContactSheet`, handed to the job (None without --sheet, or when
    --skip-existing keeps an existing sheet). Raises before any item is processed, so a refused sheet writes nothing."""
    if sheet is None:
        return None
    from harmcli import batch
    from harmcli.io.safe_write import remove_stale_temp_files

    contact, note = batch.open_sheet(sheet, spec, plan, layout, job)
    if note:
        report.info(note)
    if contact is not None:
        folder = contact.path.parent
        removed = remove_stale_temp_files(folder) if folder.is_dir() else []
        if removed:
            report.info(f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted harmcli run")
    job.sheet = contact
    return contact


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of ``path``, None when absent: a new file written over it has another inode."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _remove_stale_temp_files(layout, report: _Reporter) -> None:
    """Temporary files that a killed harmcli run left in the output folder (see harmcli.io.safe_write)."""
    from harmcli.io.safe_write import remove_stale_temp_files

    folder = layout.path if layout.is_folder else layout.path.parent
    removed = remove_stale_temp_files(folder)
    if removed:
        report.info(f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted harmcli run")


def _report_notes(job, report: _Reporter) -> None:
    """What the engine choice wants the user to know (e.g. a stale ONNX export), once per run."""
    for note in getattr(job.predictor, "notes", ()):
        report.warn(note)


@app.command("harmonize")
def harmonize_command(
    inputs: Inputs = None,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o",
            "--output",
            help="Required. The output image (its extension picks the format), or a folder for folder inputs.",
            show_default=False,
        ),
    ] = None,
    mask: MaskOpt = None,
    layer: LayerOpt = None,
    at: AtOpt = None,
    scale: ScaleOpt = None,
    device: DeviceOpt = "auto",
    weights: WeightsOpt = None,
    backend: BackendOpt = "auto",
    no_flip_average: NoFlipOpt = False,
    strength: StrengthOpt = 1.0,
    shading_strength: ShadingOpt = 1.0,
    params: Annotated[
        Optional[Path],
        typer.Option(
            "--params",
            help="Apply this saved or edited adjustment (.json, .cube, .acv, or a .tif shading map) instead of predicting; "
            "no network is loaded.",
            show_default=False,
        ),
    ] = None,
    skip_existing: SkipOpt = False,
    overwrite: OverwriteOpt = False,
    jpeg_quality: Annotated[int, typer.Option("--jpeg-quality", help="Quality of JPEG, WebP (100 = lossless), HEIC and AVIF outputs, 1..100.")] = 95,
    ext: Annotated[
        Optional[str],
        typer.Option(
            "--ext", help="Output format for folders (png, jpg, tif, ...); default: each input's own.", show_default=False
        ),
    ] = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    save_params: Annotated[
        Optional[Path],
        typer.Option(
            "--save-params",
            help="Also write the adjustment used (.json, .cube, .acv, .tif, .png); one image only.",
            show_default=False,
        ),
    ] = None,
    sheet: Annotated[
        Optional[Path],
        typer.Option(
            "--sheet",
            metavar="FILE.jpg",
            help="Also write a before/after contact sheet (.jpg or .png): a row per item with the mask outlined and the "
            "mean change; over 50 rows, pages FILE-001.jpg, FILE-002.jpg, ... Not for clips.",
            show_default=False,
        ),
    ] = None,
    sequence: Annotated[
        bool, typer.Option("--sequence", help="Read folders as one clip in name order (frames), not as unrelated images.")
    ] = False,
    temporal: Annotated[
        Optional[float],
        typer.Option(
            "--temporal",
            help="Clips: smooth the adjustment over time, 0..1 (0 = each frame as predicted) \\[default: 0.5].",
            show_default=False,
        ),
    ] = None,
    codec: Annotated[
        Optional[str],
        typer.Option(
            "--codec",
            help="Video output codec: h264, hevc, vp9, ffv1 (lossless, .mkv), h264rgb (lossless), png, prores "
            "\\[default: the source video's codec (ProRes: its profile) where the container holds it, else h264; vp9 for .webm].",
            show_default=False,
        ),
    ] = None,
    crf: Annotated[
        Optional[int],
        typer.Option("--crf", help="Video quality for h264/hevc/vp9 (lower = better) \\[default: 18, 22, 32].", show_default=False),
    ] = None,
    fps: Annotated[
        Optional[str],
        typer.Option("--fps", help="Frame rate of a --sequence folder written as a video (e.g. 24, 30000/1001).", show_default=False),
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option("--report", help="Clips: also write timings and the flicker measure to this .json file.", show_default=False),
    ] = None,
    strip_metadata: Annotated[
        bool,
        typer.Option(
            "--strip-metadata",
            help="Write no colour profile, EXIF, XMP, IPTC, resolution, PNG text or JPEG comments, and no video tags such as creation time or location "
            "(by default the output keeps the input's, and its gray or colour: the background's for FG BG).",
        ),
    ] = False,
) -> None:
    """Harmonize a pasted subject with its background; the output keeps the input's bit depth.

    A grayscale input gives a grayscale output (for FG BG the background decides: a colour foreground on a gray background comes out gray). Pixels outside the mask are copied bit for bit. An empty mask writes the input unchanged (with a warning); a mask with no background is an error. A layered .psd gives the flattened document, or with -o FILE.psd its layers with the subject harmonized.
    """
    from harmcli import batch
    from harmcli.batch.sheet import SHEET_EXTENSIONS
    from harmcli.errors import UsageError
    from harmcli.io.images import WRITE_EXTENSIONS
    from harmcli.io.psd import PSD_EXTENSIONS

    existing, device, backend = _check_options(
        inputs, output, strength=strength, shading_strength=shading_strength, max_pixels=max_pixels, threads=threads,
        skip_existing=skip_existing, overwrite=overwrite, device=device, backend=backend,
    )
    if not 1 <= jpeg_quality <= 100:
        raise UsageError(f"--jpeg-quality must be between 1 and 100, got {jpeg_quality}")
    if params is not None and weights is not None:
        raise UsageError("--params applies a saved adjustment without a network, so --weights would be unused; give one")
    if sheet is not None and sheet.suffix.lower() not in SHEET_EXTENSIONS:
        raise UsageError(f"{sheet}: --sheet must end in .jpg or .png")
    spec = batch.InputSpec.from_args(inputs, mask)
    placement = _placement(at, scale, spec)
    _check_psd(spec, layer)
    from harmcli.cli.clip_cmd import check_clip_only_options, run_clip
    from harmcli.clip.sources import is_clip

    if spec.form == "psd" and sequence:
        raise UsageError("--sequence reads folders of frames as a clip; .psd files are still images")
    # Not asked of a .psd: FFmpeg opens one as a one-frame video, and it is a layered still.
    clip = spec.form != "psd" and is_clip([p for _, p in spec.roles()], None, sequence)
    check_clip_only_options(temporal=temporal, codec=codec, crf=crf, fps=fps, report=report, sequence=clip)
    if clip and sheet is not None:
        raise UsageError("--sheet shows still images side by side; it does not go with video inputs or --sequence")
    if clip:
        run_clip(
            reporter=_Reporter(quiet), spec=spec, output=output, sequence=sequence, temporal=temporal, codec=codec,
            crf=crf, fps=fps, report=report, ext=ext, jpeg_quality=jpeg_quality, existing=existing,
            max_pixels=max_pixels, params=params, weights=weights, device=device, threads=threads, strength=strength,
            shading_strength=shading_strength, save_params=save_params, quiet=quiet, backend=backend,
            flip_average=not no_flip_average, strip_metadata=strip_metadata, placement=placement,
        )
        return
    spec.check_exists()
    layout = batch.plan_output(spec, output, extension=ext, allowed=WRITE_EXTENSIONS + PSD_EXTENSIONS)
    psd_output = layout.extension if layout.is_folder else layout.path.suffix.lower()
    if psd_output in PSD_EXTENSIONS and spec.form != "psd":
        # A layered file is written from a layered file (its layers, the subject replaced); there are none here.
        raise UsageError(
            f"{output}: .psd output needs a .psd input (it keeps that file's layers); write one of "
            f"{', '.join(e.lstrip('.') for e in WRITE_EXTENSIONS)}"
        )
    if save_params is not None:
        from harmcli.io.adjustment_files import EXPORT_EXTENSIONS

        if spec.is_folder:
            raise UsageError("--save-params works for one image; for folders use 'harmcli curves INPUTS -o FOLDER'")
        if save_params.suffix.lower() not in EXPORT_EXTENSIONS:
            raise UsageError(f"{save_params}: --save-params must end in one of {', '.join(EXPORT_EXTENSIONS)}")
        if not layout.is_folder and batch.same_file(save_params, layout.path):
            raise UsageError(f"{save_params}: --save-params and -o name the same file")
    if params is not None:
        from harmcli.io.adjustment_files import load_adjustment

        predictor = batch.FixedPredictor(load_adjustment(params))
    else:
        predictor = batch.NetworkPredictor(
            weights, device, threads or batch.default_threads(spec.is_folder), backend, not no_flip_average
        )
    reader = batch.InputReader(max_pixels=max_pixels, placement=placement, layer=layer)
    job = batch.HarmonizeJob(
        reader=reader, layout=layout, predictor=predictor, strength=strength, shading_strength=shading_strength,
        existing=existing, jpeg_quality=jpeg_quality, save_params=save_params, protect=(params, weights),
        strip_metadata=strip_metadata,
    )
    _run(job, spec, layout, reader, quiet=quiet, verb="harmonize", sheet=sheet)


@app.command("curves")
def curves_command(
    inputs: Inputs = None,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o",
            "--output",
            help="Required. .json (+ a shading .tif beside it), .cube, .acv, .tif/.tiff (shading map) or .png (plot); "
            "a folder for folder inputs.",
            show_default=False,
        ),
    ] = None,
    mask: MaskOpt = None,
    layer: LayerOpt = None,
    at: AtOpt = None,
    scale: ScaleOpt = None,
    fmt: Annotated[
        Optional[str],
        typer.Option(
            "--format", "-f", help=f"Format for folders: {', '.join(CURVES_FORMATS)} (default json).", show_default=False
        ),
    ] = None,
    device: DeviceOpt = "auto",
    weights: WeightsOpt = None,
    backend: BackendOpt = "auto",
    no_flip_average: NoFlipOpt = False,
    strength: StrengthOpt = 1.0,
    shading_strength: ShadingOpt = 1.0,
    skip_existing: SkipOpt = False,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Predict the adjustment (RGB curves + shading map) and export it, to edit or to apply with 'harmonize --params'."""
    from harmcli import batch
    from harmcli.io.adjustment_files import EXPORT_EXTENSIONS

    existing, device, backend = _check_options(
        inputs, output, strength=strength, shading_strength=shading_strength, max_pixels=max_pixels, threads=threads,
        skip_existing=skip_existing, overwrite=overwrite, device=device, backend=backend,
    )
    spec = batch.InputSpec.from_args(inputs, mask)
    placement = _placement(at, scale, spec)
    _check_psd(spec, layer)
    spec.check_exists()
    layout = batch.plan_output(spec, output, extension=fmt, allowed=EXPORT_EXTENSIONS, default_extension=".json",
                                format_option="--format")
    reader = batch.InputReader(max_pixels=max_pixels, placement=placement, layer=layer)
    predictor = batch.NetworkPredictor(
        weights, device, threads or batch.default_threads(spec.is_folder), backend, not no_flip_average
    )
    job = batch.CurvesJob(
        reader=reader, layout=layout, predictor=predictor, strength=strength, shading_strength=shading_strength,
        existing=existing, protect=(weights,),
    )
    _run(job, spec, layout, reader, quiet=quiet, verb="curves")
