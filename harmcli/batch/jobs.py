"""What to do with one item: check its output, read it, predict its adjustment, apply or export it.

:class:`HarmonizeJob` and :class:`CurvesJob` share everything but :meth:`_write`. The adjustment comes from a
:class:`NetworkPredictor` (loaded once) or a :class:`FixedPredictor` (a saved adjustment, no network).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from harmcli.batch.inputs import Item
from harmcli.batch.outputs import OutputLayout, same_file, written_with
from harmcli.batch.reading import InputReader, LoadedInputs
from harmcli.batch.summary import ItemResult
from harmcli.errors import ImageWriteError, OutputExistsError
from harmcli.io.psd import PSD_EXTENSIONS
from harmcli.ops.adjustment import Adjustment

Existing = Literal["error", "skip", "overwrite"]

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

    @property
    def overwrite(self) -> bool:
        return self.existing == "overwrite"

    def prepare(self) -> None:
        """Load the network and create the output folder: after this, items can be processed."""
        from harmcli.io.safe_write import make_folder

        self.predictor.load()
        if self.layout.is_folder:
            make_folder(self.layout.path)

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
            raise OutputExistsError(
                f"{existing[0]}: already exists; pass --overwrite to replace it or --skip-existing to keep it",
                existing[0],
            )
        return None

    def load(self, item: Item) -> LoadedInputs:
        return self.reader.load(item)

    def predict(self, inputs: LoadedInputs) -> Adjustment | None:
        """The adjustment to apply (scaled by the strengths), or None when the mask is empty."""
        if inputs.mask_is_empty:
            return None
        return self.predictor(inputs).scaled(self.strength, self.shading_strength)

    def finish(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:
        """Write the item's output(s). An output that appeared since :meth:`check` (another run writing into the
        same folder) is kept: under --skip-existing the item is skipped, otherwise it fails."""
        try:
            return self._write(inputs, adjustment)
        except OutputExistsError as exc:
            if self.existing != "skip":
                raise
            out, _ = self.layout.output_for(inputs.item)
            return ItemResult(inputs.item.stem, "skipped", (out,), f"{exc.path} exists: another run wrote it (--skip-existing)")

    def _write(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:  # pragma: no cover
        raise NotImplementedError


class HarmonizeJob(_Job):
    """Predict (or take) an adjustment, apply it inside the mask, write the image in the input's bit depth, and in
    gray when the input is grayscale (:attr:`LoadedInputs.gray`)."""

    def __init__(
        self, *, jpeg_quality: int = 95, save_params: Path | None = None, strip_metadata: bool = False, **kwargs
    ):
        """``strip_metadata``: write no colour profile, EXIF, XMP, IPTC or resolution (by default the output keeps
        them)."""
        super().__init__(extra_outputs=(save_params,) if save_params else (), **kwargs)
        self.jpeg_quality = jpeg_quality
        self.save_params = save_params
        self.strip_metadata = strip_metadata
        # harmonize --sheet: a harmcli.batch.sheet.ContactSheet, set once the items are known (open_sheet needs
        # the plan); each written item hands it its thumbnails.
        self.sheet = None

    def _write(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:
        from harmcli.io.images import gray_from_rgb, write_image
        from harmcli.ops.apply import apply_adjustment

        item = inputs.item
        out, note = self.layout.output_for(item)
        notes = [*inputs.notes, *([note] if note else [])]
        if adjustment is None:
            notes.append(f"{inputs.mask_name}: {EMPTY_MASK_NOTE}; wrote the input unchanged")
            result = inputs.composite
        else:
            result = apply_adjustment(inputs.composite, inputs.mask, adjustment)
        # --sheet measures the change before a PSD's layers above the subject and gray; kept only then, as it may be
        # a second full-size picture while the output is written.
        harmonized = result if self.sheet is not None else None
        alpha = inputs.alpha
        if inputs.overlay is not None:  # a PSD's layers above its subject: the output is the flattened document
            result, alpha = inputs.overlay.draw(result, alpha)
        if inputs.gray:
            result = gray_from_rgb(result)  # exact where the three channels are equal: outside the mask, for one
        opaque = np.iinfo(alpha.dtype).max if alpha is not None and alpha.dtype.kind in "ui" else 1.0
        if alpha is not None and out.suffix.lower() in (".jpg", ".jpeg") and alpha.min() < opaque:
            notes.append(
                f"{out}: JPEG has no alpha channel, so the transparency was dropped (the colours under transparent "
                "pixels show); write .png, .tif or .webp to keep it"
            )
        # --save-params first and the image second, and the saved adjustment is removed again when the image
        # fails: both or neither, so a re-run never finds half a result that only --overwrite gets past.
        params: list[Path] = []
        if self.save_params is not None:
            from harmcli.io.adjustment_files import save_adjustment

            params = save_adjustment(
                adjustment or Adjustment.identity(), self.save_params, protect=self.protected(item), overwrite=self.overwrite,
                notes=notes,
            )
        try:
            if out.suffix.lower() in PSD_EXTENSIONS:
                image = self._write_psd(out, inputs, adjustment)
            else:
                image = write_image(
                    out, result, bit_depth=inputs.bit_depth, jpeg_quality=self.jpeg_quality, alpha=alpha,
                    protect=self.protected(item), overwrite=self.overwrite,
                    metadata=None if self.strip_metadata else inputs.metadata,
                )
        except BaseException:
            for path in params:
                path.unlink(missing_ok=True)
            raise
        if self.sheet is not None:  # after the write: a failed item's row is its placeholder, never its tiles
            self.sheet.record(inputs, harmonized, result)
        return ItemResult(item.stem, "done", (Path(image), *params), "; ".join(notes))

    def _write_psd(self, out: Path, inputs: LoadedInputs, adjustment: Adjustment | None) -> Path:
        """A .psd output: the input PSD's layers with the subject layer harmonized (harmcli.io.psd.write_psd)."""
        from harmcli.io.psd import write_psd

        if inputs.psd is None:
            raise ImageWriteError(
                f"{out}: a .psd is written from a .psd input (its layers, the subject harmonized); write .png, .tif or .jpg"
            )
        return write_psd(
            out, inputs.psd, adjustment, composite=inputs.composite, alpha=inputs.alpha, protect=self.protected(inputs.item),
            overwrite=self.overwrite, strip_metadata=self.strip_metadata,
        )


class CurvesJob(_Job):
    """Predict the adjustment and export it (.json + shading TIFF, .cube, .acv, .tif shading map, .png plot)."""

    def _write(self, inputs: LoadedInputs, adjustment: Adjustment | None) -> ItemResult:
        from harmcli.io.adjustment_files import save_adjustment

        item = inputs.item
        out, _ = self.layout.output_for(item)
        notes = list(inputs.notes)
        if adjustment is None:
            notes.append(f"{inputs.mask_name}: {EMPTY_MASK_NOTE}; wrote the identity adjustment")
            adjustment = Adjustment.identity()
        written = save_adjustment(adjustment, out, protect=self.protected(item), overwrite=self.overwrite, notes=notes)
        return ItemResult(item.stem, "done", tuple(Path(p) for p in written), "; ".join(notes))


def default_threads(folder: bool) -> int | None:
    """CPU threads for the network: PyTorch's choice for one image; in folder mode one core fewer, left to the
    reading/writing threads (on a 2-core machine two spinning torch threads next to busy I/O threads made the
    loop 2-3x slower than one torch thread)."""
    if not folder:
        return None
    return max(1, (os.cpu_count() or 1) - 1)


class NetworkPredictor:
    """Predicts adjustments with a network that is loaded once, on first use (or by :meth:`load`).

    ``backend`` picks the engine (:func:`harmcli.pipeline.load_harmonizer`); ``notes`` collects what the user
    should hear about that choice (a stale ONNX export).
    """

    def __init__(
        self, weights: Path | None, device: str, threads: int | None = None, backend: str = "auto", flip_average: bool = True
    ):
        self.weights, self.device, self.threads, self.backend = weights, device, threads, backend
        self.flip_average = flip_average
        self.harmonizer = None
        self.notes: list[str] = []

    def load(self) -> None:
        if self.harmonizer is None:
            from harmcli.pipeline import load_harmonizer

            self.harmonizer = load_harmonizer(
                self.weights, self.device, self.backend, self.threads, self.notes, flip_average=self.flip_average
            )

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

