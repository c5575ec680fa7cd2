"""One image or a folder of them: the library side of ``harmcli harmonize`` and ``harmcli curves``.

What the command line names is an :class:`InputSpec` (three forms; every path a file or a folder).
:func:`match_items` pairs folder contents by file stem into :class:`Item` s. A job (:class:`HarmonizeJob`,
:class:`CurvesJob`) knows how to check, read, predict and finish one item. :func:`run_one` runs a single item
and raises on any problem; :func:`run_batch` runs many, keeps going past a bad item and returns a
:class:`BatchSummary`.

The folder loop overlaps I/O with compute: a small thread pool reads the next item and applies + writes
finished ones while the network runs on the current one in the calling thread (OpenCV, NumPy and torch release
the GIL for the heavy parts). Every item's result depends only on its own inputs, so the order in which items
finish does not change any output.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError, InputMismatchError, UsageError
from harmcli.ops.adjustment import Adjustment

Form = Literal["layers", "alpha", "composite"]
Status = Literal["done", "skipped", "failed"]
Existing = Literal["error", "skip", "overwrite"]

# A mask whose every pixel is at least this much foreground leaves nothing to harmonize against.
ALL_FOREGROUND = 1.0 - 1e-3
# Used when an input's own extension cannot be written (e.g. a .webp or .bmp input in folder mode).
FALLBACK_EXTENSION = ".png"


# ----------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputSpec:
    """The inputs as named on the command line.

    Forms: ``layers`` = FG BG MASK (composite = M·FG + (1−M)·BG); ``alpha`` = FG BG with the mask in FG's
    alpha channel; ``composite`` = an already pasted image and its mask (the network's background input is
    the composite itself). Any path may be a folder.
    """

    form: Form
    primary: Path  # the foreground, or the composite
    background: Path | None = None
    mask: Path | None = None

    @classmethod
    def from_args(cls, paths: Sequence[Path], mask: Path | None = None) -> "InputSpec":
        paths = [Path(p) for p in paths]
        mask = Path(mask) if mask is not None else None
        if len(paths) == 1:
            if mask is None:
                raise UsageError(
                    f"{paths[0]}: one input is read as a composite and needs --mask MASK "
                    "(or give a background: FG BG [MASK])"
                )
            return cls("composite", paths[0], None, mask)
        if len(paths) == 2:
            if mask is None:
                return cls("alpha", paths[0], paths[1], None)
            return cls("layers", paths[0], paths[1], mask)
        if len(paths) == 3:
            if mask is not None:
                raise UsageError("the mask is given twice: as the third input and as --mask (give one)")
            return cls("layers", paths[0], paths[1], paths[2])
        raise UsageError(f"expected FG BG [MASK] or COMPOSITE --mask MASK, got {len(paths)} inputs")

    def roles(self) -> list[tuple[str, Path]]:
        """(role, path) for every input, in command-line order."""
        first = "composite" if self.form == "composite" else "foreground"
        out = [(first, self.primary)]
        if self.background is not None:
            out.append(("background", self.background))
        if self.mask is not None:
            out.append(("mask", self.mask))
        return out

    @property
    def is_folder(self) -> bool:
        return any(p.is_dir() for _, p in self.roles())

    def check_exists(self) -> None:
        for role, path in self.roles():
            if not path.exists():
                raise ImageReadError(f"{path}: no such file or folder ({role})")


@dataclass(frozen=True)
class Item:
    """One image to process: its stem (names the output in folder mode) and its input files."""

    stem: str
    form: Form
    primary: Path
    background: Path | None = None
    mask: Path | None = None

    @property
    def inputs(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.primary, self.background, self.mask) if p is not None)


@dataclass(frozen=True)
class Unmatched:
    """A stem found in some input folders but not in all of them."""

    stem: str
    found: dict[str, Path]
    missing: tuple[str, ...]

    def describe(self) -> str:
        found = ", ".join(str(p) for p in self.found.values())
        return f"{found}: no {' or '.join(self.missing)} with stem '{self.stem}'; skipped"


@dataclass
class Plan:
    """What a command will process: matched items, stems that matched nothing, and ambiguous stems."""

    items: list[Item]
    unmatched: list[Unmatched] = field(default_factory=list)
    failures: list["ItemResult"] = field(default_factory=list)  # problems found while matching


def list_images(folder: Path, extensions: Iterable[str]) -> list[Path]:
    """Image files directly in ``folder`` (not recursive; hidden files ignored), sorted by name."""
    allowed = {e.lower() for e in extensions}
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in allowed
    )


def match_items(spec: InputSpec, extensions: Iterable[str]) -> Plan:
    """Pair the inputs into items.

    A file input is used for every item; folder inputs are matched by file stem (``a.jpg`` in the foreground
    folder goes with ``a.png`` in the mask folder). A stem missing from any folder is *unmatched*; a stem that
    names two files in one folder (``a.png`` and ``a.jpg``) is a failure, since either could be meant.
    """
    extensions = tuple(extensions)
    spec.check_exists()
    roles = spec.roles()
    folders: dict[str, dict[str, list[Path]]] = {}
    for role, path in roles:
        if path.is_dir():
            by_stem: dict[str, list[Path]] = {}
            files = list_images(path, extensions)
            if not files:
                raise ImageReadError(f"{path}: no images in this folder (looked for {', '.join(sorted(set(extensions)))})")
            for f in files:
                by_stem.setdefault(f.stem, []).append(f)
            folders[role] = by_stem
    paths = dict(roles)
    if not folders:
        return Plan([Item(spec.primary.stem, spec.form, spec.primary, spec.background, spec.mask)])

    plan = Plan([])
    all_stems = sorted(set().union(*(set(s) for s in folders.values())))
    for stem in all_stems:
        missing = tuple(role for role in folders if stem not in folders[role])
        if missing:
            found = {role: folders[role][stem][0] for role in folders if stem in folders[role]}
            plan.unmatched.append(Unmatched(stem, found, missing))
            continue
        ambiguous = [files for files in (folders[role][stem] for role in folders) if len(files) > 1]
        if ambiguous:
            names = ", ".join(str(p) for p in ambiguous[0])
            message = f"{names}: several files share the stem '{stem}'; rename all but one"
            plan.failures.append(ItemResult(stem, "failed", message=message))
            continue
        chosen = {role: (folders[role][stem][0] if role in folders else paths[role]) for role, _ in roles}
        first = "composite" if spec.form == "composite" else "foreground"
        plan.items.append(Item(stem, spec.form, chosen[first], chosen.get("background"), chosen.get("mask")))
    if not plan.items and not plan.failures:
        folder_list = ", ".join(str(paths[r]) for r in folders)
        raise InputMismatchError(f"{folder_list}: no file stem is present in every input folder; nothing to do")
    return plan


@dataclass
class LoadedInputs:
    """One item read into memory: what the network sees and what the output is made from.

    ``composite`` and ``background`` are (H, W, 3) uint8 or uint16 RGB of the same dtype; ``mask`` is (H, W)
    float32 in [0, 1]; ``alpha`` is the output's alpha channel (None = opaque).
    """

    item: Item
    composite: np.ndarray
    background: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mask_name: str = ""  # the mask's file, for messages

    @property
    def mask_is_empty(self) -> bool:
        return not bool(self.mask.any())


def _size_text(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _promote(rgb: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """8-bit -> 16-bit by x257 (exact: 255 -> 65535), so mixed bit depths combine without loss."""
    if rgb.dtype == dtype:
        return rgb
    return rgb.astype(dtype) * np.asarray(257, dtype)


def _over(mask: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha of the pasted foreground (opaque where the mask is) over a background with transparency."""
    maxval = float(np.iinfo(alpha.dtype).max) if alpha.dtype.kind in "ui" else 1.0
    a = alpha.astype(np.float32) + mask * (maxval - alpha.astype(np.float32))
    if alpha.dtype.kind in "ui":
        return np.rint(a).astype(alpha.dtype)
    return a


class InputReader:
    """Reads items; a file shared by every item (one background for many foregrounds) is read only once."""

    def __init__(self, *, max_pixels: int):
        self.max_pixels = max_pixels
        self._shared: dict[tuple[str, Path], object] = {}

    def preload(self, spec: InputSpec) -> None:
        """Read the file inputs of a folder-mode spec now: a bad shared file fails the command, not each item."""
        for role, path in spec.roles():
            if path.is_file() and (role, path) not in self._shared:
                self._shared[(role, path)] = self._read(role, path)

    def _read(self, role: str, path: Path):
        from harmcli.io.images import read_image, read_mask

        if (role, path) in self._shared:
            return self._shared[(role, path)]
        if role == "mask":
            return read_mask(path, size=None, max_pixels=self.max_pixels)
        return read_image(path, max_pixels=self.max_pixels)

    def _mask(self, path: Path, size: tuple[int, int], against: Path) -> np.ndarray:
        from harmcli.io.images import read_mask

        if ("mask", path) in self._shared:
            mask = self._shared[("mask", path)]
            if mask.shape[:2] != tuple(size):
                raise InputMismatchError(
                    f"{path}: mask is {_size_text(mask.shape)} but {against} is {_size_text(size)}; "
                    "they must be the same size"
                )
            return mask
        return read_mask(path, size=tuple(size), max_pixels=self.max_pixels)

    def load(self, item: Item) -> LoadedInputs:
        from harmcli.ops.apply import mask_to_float

        first = "composite" if item.form == "composite" else "foreground"
        primary = self._read(first, item.primary)
        size = primary.rgb.shape[:2]
        if item.form == "composite":
            mask = self._mask(item.mask, size, item.primary)
            composite = background = primary.rgb
            alpha = primary.alpha
            mask_name = str(item.mask)
        else:
            from harmcli.ops.paste import make_composite

            back = self._read("background", item.background)
            if back.rgb.shape[:2] != size:
                raise InputMismatchError(
                    f"{item.background}: background is {_size_text(back.rgb.shape)} but foreground {item.primary} is "
                    f"{_size_text(size)}; they must be the same size"
                )
            if item.form == "alpha":
                if primary.alpha is None:
                    raise InputMismatchError(
                        f"{item.primary}: foreground has no alpha channel to use as the mask; "
                        "give a mask: harmcli harmonize FG BG MASK"
                    )
                mask = mask_to_float(primary.alpha)
                mask_name = f"{item.primary} (alpha channel)"
            else:
                mask = self._mask(item.mask, size, item.primary)
                mask_name = str(item.mask)
            dtype = np.promote_types(primary.rgb.dtype, back.rgb.dtype)
            foreground, background = _promote(primary.rgb, dtype), _promote(back.rgb, dtype)
            composite = make_composite(foreground, background, mask)
            alpha = _over(mask, back.alpha) if back.alpha is not None else None
        if mask.size and float(mask.min()) >= ALL_FOREGROUND:
            raise InputMismatchError(
                f"{mask_name}: the mask is foreground everywhere; harmonization needs some background to match against"
            )
        bit_depth = 16 if composite.dtype == np.uint16 else 8
        return LoadedInputs(item, composite, background, mask, alpha, bit_depth, mask_name)


# ---------------------------------------------------------------------------------------------- outputs


def normalise_extension(ext: str) -> str:
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else "." + ext


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (links included), even if ``a`` does not exist."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def written_with(path: Path) -> list[Path]:
    """``path`` and the files saving to it may also write: a ``.json`` adjustment's shading TIFF beside it."""
    if path.suffix.lower() == ".json":
        return [path, path.with_name(f"{path.stem}.shading.tif")]
    return [path]


@dataclass(frozen=True)
class OutputLayout:
    """Where each item's output goes: one file, or ``folder/STEM.EXT``.

    ``extension`` None means "the extension of the item's foreground/composite file" (or
    ``FALLBACK_EXTENSION`` when that one cannot be written).
    """

    path: Path  # the file (single) or the folder
    is_folder: bool
    extension: str | None
    allowed: tuple[str, ...]

    def output_for(self, item: Item) -> tuple[Path, str | None]:
        """The output path of ``item`` and a note when the input's extension had to be replaced."""
        if not self.is_folder:
            return self.path, None
        ext, note = self.extension, None
        if ext is None:
            ext = item.primary.suffix
            if ext.lower() not in self.allowed:
                note = f"{item.primary}: cannot write {ext or 'files without extension'}; wrote {FALLBACK_EXTENSION} instead"
                ext = FALLBACK_EXTENSION
        return self.path / f"{item.stem}{ext}", note


def plan_output(
    spec: InputSpec,
    output: Path,
    *,
    extension: str | None,
    allowed: Sequence[str],
    default_extension: str | None = None,
    what: str = "-o",
) -> OutputLayout:
    """Check ``-o`` against the inputs and decide the output layout.

    Folder inputs need an output folder (created later, when processing starts) that is none of the input
    folders. A single item writes ``-o`` itself, or ``-o/STEM.EXT`` when ``-o`` is an existing folder.
    ``extension`` is ``--ext``/``--format``; ``default_extension`` replaces the input's
    own extension when there is no such option (``curves`` writes .json).
    """
    allowed = tuple(a.lower() for a in allowed)
    ext = normalise_extension(extension) if extension else None
    if ext is not None and ext not in allowed:
        raise UsageError(f"cannot write '{ext}' files; choose one of: {', '.join(a.lstrip('.') for a in allowed)}")
    ext = ext or default_extension
    output = Path(output)
    if spec.is_folder:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: inputs are folders, so {what} must be a folder, but this is a file")
        for role, path in spec.roles():
            if path.is_dir() and same_file(output, path):
                raise ImageWriteError(
                    f"{output}: output folder is the {role} input folder; choose another {what} (inputs are never overwritten)"
                )
        return OutputLayout(output, True, ext, allowed)
    if output.is_dir():
        return OutputLayout(output, True, ext, allowed)
    suffix = output.suffix.lower()
    if not suffix:
        raise UsageError(f"{output}: {what} needs an extension ({', '.join(allowed)}) or must be an existing folder")
    if suffix not in allowed:
        raise UsageError(f"{output}: cannot write '{suffix}' files; use one of: {', '.join(allowed)}")
    if ext is not None and extension is not None and ext != suffix:
        raise UsageError(f"{output}: the extension contradicts '{extension}'; give one or the other")
    return OutputLayout(output, False, None, allowed)


# ------------------------------------------------------------------------------------------------ jobs


@dataclass
class ItemResult:
    """What happened to one item. ``message`` is why it was skipped or failed, or a warning when done."""

    stem: str
    status: Status
    outputs: tuple[Path, ...] = ()
    message: str = ""
    seconds: float = 0.0


def default_threads(folder: bool) -> int | None:
    """CPU threads for the network: PyTorch's choice for one image; in folder mode one core fewer, left to the
    reading/writing threads (on a 2-core machine two spinning torch threads next to busy I/O threads made the
    loop 2-3x slower than one torch thread)."""
    if not folder:
        return None
    return max(1, (os.cpu_count() or 1) - 1)


class NetworkPredictor:
    """Predicts adjustments with a network that is loaded once, on first use (or by :meth:`load`)."""

    def __init__(self, weights: Path | None, device: str, threads: int | None = None):
        self.weights, self.device, self.threads = weights, device, threads
        self.harmonizer = None

    def load(self) -> None:
        if self.harmonizer is None:
            from harmcli.pipeline import Harmonizer

            self.harmonizer = Harmonizer.load(self.weights, self.device)
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)

    def __call__(self, inputs: LoadedInputs) -> Adjustment:
        self.load()
        return self.harmonizer.predict(inputs.composite, inputs.background, inputs.mask)


class FixedPredictor:
    """The same saved/edited adjustment for every image; no network involved."""

    def __init__(self, adjustment: Adjustment):
        self.adjustment = adjustment

    def load(self) -> None:
        pass

    def __call__(self, inputs: LoadedInputs) -> Adjustment:
        return self.adjustment


EMPTY_MASK_NOTE = "the mask is empty (all zero): nothing to harmonize"


class _Job:
    """Shared by both commands: output checks, reading, prediction and the empty-mask rule."""

    def __init__(
        self,
        *,
        reader: InputReader,
        layout: OutputLayout,
        predictor: NetworkPredictor | FixedPredictor,
        strength: float = 1.0,
        shading_strength: float = 1.0,
        existing: Existing = "error",
        extra_outputs: Sequence[Path] = (),
        protect: Sequence[Path] = (),
    ):
        """``protect``: files besides each item's inputs that must never be written (--params, --weights)."""
        self.reader, self.layout, self.predictor = reader, layout, predictor
        self.strength, self.shading_strength = strength, shading_strength
        self.existing = existing
        self.extra_outputs = tuple(extra_outputs)
        self.protect = tuple(Path(p) for p in protect if p is not None)

    def protected(self, item: Item) -> tuple[Path, ...]:
        return (*item.inputs, *self.protect)

    def prepare(self) -> None:
        """Load the network and create the output folder: after this, items can be processed."""
        self.predictor.load()
        if self.layout.is_folder:
            self.layout.path.mkdir(parents=True, exist_ok=True)

    def check(self, item: Item) -> ItemResult | None:
        """Before reading anything: refuse to overwrite an input or (without --overwrite) an existing output.

        Returns a ``skipped`` result under --skip-existing, None to go on; raises otherwise.
        """
        out, _ = self.layout.output_for(item)
        primary = (out, *self.extra_outputs)
        targets = [t for path in primary for t in written_with(path)]
        for target in targets:
            for source in self.protected(item):
                if same_file(target, source):
                    raise ImageWriteError(
                        f"{target}: this is an input file; choose another output (inputs are never overwritten)"
                    )
        if self.existing == "skip" and any(p.exists() for p in primary):
            found = next(p for p in primary if p.exists())
            return ItemResult(item.stem, "skipped", (out,), f"{found} exists (--skip-existing)")
        existing = [t for t in targets if t.exists()]
        if existing and self.existing == "error":
            raise ImageWriteError(
                f"{existing[0]}: already exists; pass --overwrite to replace it or --skip-existing to keep it"
            )
        return None

    def load(self, item: Item) -> LoadedInputs:
        return self.reader.load(item)

    def predict(self, inputs: LoadedInputs) -> Adjustment | None:
        """The adjustment to apply (scaled by the strengths), or None when the mask is empty."""
        if inputs.mask_is_empty:
            return None
        return self.predictor(inputs).scaled(self.strength, self.shading_strength)

    def finish(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:  # pragma: no cover
        raise NotImplementedError


class HarmonizeJob(_Job):
    """Predict (or take) an adjustment, apply it inside the mask, write the image in the input's bit depth."""

    def __init__(self, *, jpeg_quality: int = 95, save_params: Path | None = None, **kwargs):
        super().__init__(extra_outputs=(save_params,) if save_params else (), **kwargs)
        self.jpeg_quality = jpeg_quality
        self.save_params = save_params

    def finish(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:
        from harmcli.io.images import write_image
        from harmcli.ops.apply import apply_adjustment

        item = inputs.item
        out, note = self.layout.output_for(item)
        notes = [note] if note else []
        if adjustment is None:
            notes.append(f"{inputs.mask_name}: {EMPTY_MASK_NOTE}; wrote the input unchanged")
            result = inputs.composite
        else:
            result = apply_adjustment(inputs.composite, inputs.mask, adjustment)
        out.parent.mkdir(parents=True, exist_ok=True)
        written = [
            write_image(
                out, result, bit_depth=inputs.bit_depth, jpeg_quality=self.jpeg_quality, alpha=inputs.alpha,
                protect=self.protected(item),
            )
        ]
        if self.save_params is not None:
            from harmcli.io.adjustment_files import save_adjustment

            self.save_params.parent.mkdir(parents=True, exist_ok=True)
            written += save_adjustment(adjustment or Adjustment.identity(), self.save_params, protect=self.protected(item))
        return ItemResult(item.stem, "done", tuple(Path(p) for p in written), "; ".join(notes))


class CurvesJob(_Job):
    """Predict the adjustment and export it (.json + shading TIFF, .cube, .acv, .tif shading map, .png plot)."""

    def finish(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:
        from harmcli.io.adjustment_files import save_adjustment

        item = inputs.item
        out, _ = self.layout.output_for(item)
        notes = []
        if adjustment is None:
            notes.append(f"{inputs.mask_name}: {EMPTY_MASK_NOTE}; wrote the identity adjustment")
            adjustment = Adjustment.identity()
        out.parent.mkdir(parents=True, exist_ok=True)
        written = save_adjustment(adjustment, out, protect=self.protected(item))
        return ItemResult(item.stem, "done", tuple(Path(p) for p in written), "; ".join(notes))


# ------------------------------------------------------------------------------------------------ loops


def run_one(job: _Job, item: Item) -> ItemResult:
    """Process one item in the calling thread; any problem raises (a :class:`HarmcliError` for the user's)."""
    started = time.perf_counter()
    skipped = job.check(item)
    if skipped is not None:
        return skipped
    inputs = job.load(item)  # read first: a bad input fails before the network is loaded
    job.prepare()
    result = job.finish(inputs, job.predict(inputs))
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class BatchSummary:
    results: list[ItemResult]
    unmatched: int
    seconds: float

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def line(self) -> str:
        done = self.count("done")
        parts = [f"{done} done", f"{self.count('skipped')} skipped", f"{self.failed} failed"]
        if self.unmatched:
            parts.append(f"{self.unmatched} unmatched")
        per_image = f", {self.seconds / done:.2f} s per image" if done else ""
        return f"{', '.join(parts)} in {self.seconds:.1f} s{per_image}"


def failure_message(exc: BaseException) -> str:
    """One line for a failed item: the library's own message, or the exception type for anything else."""
    if isinstance(exc, HarmcliError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def run_batch(
    job: _Job,
    plan: Plan,
    *,
    on_result: Callable[[ItemResult], None] | None = None,
    workers: int = 2,
    prefetch: int = 1,
    max_pending_writes: int = 1,
) -> BatchSummary:
    """Process every item of ``plan``; a failing item is recorded and the loop goes on.

    The network runs in the calling thread; reading (up to ``prefetch`` items ahead) and apply + write run on
    ``workers`` threads. With the defaults at most three items are in memory at once (the one being predicted,
    the next being read, the previous being written); a 100-megapixel 8-bit input holds about 1 GB per item.
    ``on_result`` is called in the calling thread, once per item, as items finish.
    Errors that concern every item (weights, device) raise from :meth:`_Job.prepare` before any item is done.
    """
    started = time.perf_counter()
    results: list[ItemResult] = []

    def emit(result: ItemResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for failure in plan.failures:
        emit(failure)
    todo = deque(plan.items)
    reads: deque[tuple[Item, Future, float]] = deque()
    writes: deque[tuple[Item, Future, float]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="harmcli-io")

    def schedule_reads() -> None:
        while todo and len(reads) < prefetch:
            item = todo.popleft()
            t0 = time.perf_counter()
            try:
                skipped = job.check(item)
            except Exception as exc:
                emit(ItemResult(item.stem, "failed", message=failure_message(exc)))
                continue
            if skipped is not None:
                emit(skipped)
                continue
            reads.append((item, pool.submit(job.load, item), t0))

    def collect_writes(keep: int) -> None:
        while len(writes) > keep or (writes and writes[0][1].done()):
            item, future, t0 = writes.popleft()
            try:
                result = future.result()
            except Exception as exc:
                result = ItemResult(item.stem, "failed", message=failure_message(exc))
            result.seconds = time.perf_counter() - t0
            emit(result)

    try:
        schedule_reads()  # the first reads overlap loading the network
        job.prepare()
        while reads:
            item, future, t0 = reads.popleft()
            schedule_reads()
            try:
                inputs = future.result()
                adjustment = job.predict(inputs)
            except Exception as exc:
                emit(ItemResult(item.stem, "failed", message=failure_message(exc), seconds=time.perf_counter() - t0))
                continue
            writes.append((item, pool.submit(job.finish, inputs, adjustment), t0))
            del inputs  # the write task holds the only reference; memory stays bounded by the queues
            collect_writes(keep=max_pending_writes)
        collect_writes(keep=0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return BatchSummary(results, len(plan.unmatched), time.perf_counter() - started)
