"""``harmonize --sheet FILE``: a before/after contact sheet of a run, to glance at instead of opening every output.

The layout (tests check it, the README states it):

* one row per item, in the items' order (file-stem order, the order :func:`~harmcli.batch.match_items` gives);
  a row is a caption line (:data:`CAPTION` px) over two tiles side by side: *before*, what harmonizing started from
  (the composite, or FG pasted on BG) with the mask's outline drawn on it, and *after*, the output;
* tiles are :data:`TILE_HEIGHT` px tall with the aspect ratio kept; a tile that would be wider than
  :data:`MAX_TILE_WIDTH` (a panorama) is that wide and less tall, centred in its row;
* an item that failed or was skipped gets one placeholder tile (:data:`PLACEHOLDER_WIDTH` px wide) saying why,
  and its caption says the same;
* :data:`PAD` px around and between everything: a page is ``PAD + rows * (CAPTION + TILE_HEIGHT + PAD)`` px tall and
  ``PAD + widest row + PAD`` px wide (at least the placeholder's width);
* up to :data:`ROWS_PER_PAGE` rows the sheet is FILE itself; more rows go on pages ``FILE-001.EXT``,
  ``FILE-002.EXT``, ..., :data:`ROWS_PER_PAGE` rows each (the last one fewer).

Memory stays bounded: an item's full-size arrays are shrunk to its two tiles as soon as its output is written
(on the writing thread), and a page is drawn, written and dropped as soon as all its items are finished, so
at most about two pages of thumbnails are held, however many items there are.

Tiles are 8-bit sRGB: a 16-bit item is rounded to 8 bits, one with another colour profile is converted, a gray
one is shown gray. Transparency is not shown (the tiles show the colour under it).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from harmcli.batch.outputs import same_file, written_with
from harmcli.batch.summary import ItemResult, failure_message
from harmcli.errors import HarmcliError, ImageWriteError, OutputExistsError

if TYPE_CHECKING:
    from harmcli.batch.inputs import InputSpec, Plan
    from harmcli.batch.jobs import HarmonizeJob
    from harmcli.batch.outputs import OutputLayout
    from harmcli.batch.reading import LoadedInputs

SHEET_EXTENSIONS = (".jpg", ".jpeg", ".png")
ROWS_PER_PAGE = 50  # 50 rows of 282 px: a 14 100 px tall page, well inside JPEG's 65 535 px limit
TILE_HEIGHT = 256
MAX_TILE_WIDTH = 3 * TILE_HEIGHT
PAD = 6
CAPTION = 20
ROW_HEIGHT = CAPTION + TILE_HEIGHT + PAD
PLACEHOLDER_WIDTH = 2 * TILE_HEIGHT + PAD  # as wide as two square tiles
CANVAS = (24, 24, 24)
PLACEHOLDER_FILL = (64, 64, 64)
_CAPTION_COLOURS = {"done": (235, 235, 235), "skipped": (170, 170, 170), "failed": (255, 120, 110)}
# Rows of pixels per step when measuring the change: bounded temporary memory for a 100-megapixel image.
_CHUNK_ROWS = 256


def page_paths(path: Path, rows: int) -> list[Path]:
    """The files a sheet of ``rows`` rows is written to: ``path`` itself up to :data:`ROWS_PER_PAGE` rows, else
    ``STEM-001.EXT``, ``STEM-002.EXT``, ... (more digits past 999 pages)."""
    path = Path(path)
    if rows <= ROWS_PER_PAGE:
        return [path]
    count = math.ceil(rows / ROWS_PER_PAGE)
    digits = max(3, len(str(count)))
    return [path.with_name(f"{path.stem}-{n:0{digits}d}{path.suffix}") for n in range(1, count + 1)]


def mean_change(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute change of ``after`` against ``before`` (H, W, 3) inside ``mask`` (H, W, float in [0, 1]), in
    8-bit levels (a 16-bit image's difference divided by 257), averaged over the channels and weighted by the soft
    mask; 0 for an empty mask. Measured in strips, so no full-size float copy is ever made."""
    scale = 257.0 if before.dtype == np.uint16 else 1.0
    total = weight = 0.0
    for y in range(0, before.shape[0], _CHUNK_ROWS):
        m = mask[y : y + _CHUNK_ROWS].astype(np.float32)
        diff = np.abs(after[y : y + _CHUNK_ROWS].astype(np.float32) - before[y : y + _CHUNK_ROWS].astype(np.float32))
        total += float((diff.sum(axis=2) * m).sum(dtype=np.float64))
        weight += float(m.sum(dtype=np.float64))
    return total / (3.0 * weight * scale) if weight > 0 else 0.0


@dataclass
class _Row:
    name: str  # what the caption calls the item: its output's file name
    status: str | None = None  # None until the item's result is in
    before: np.ndarray | None = None
    after: np.ndarray | None = None
    change: float = 0.0
    message: str = ""  # why it failed or was skipped, or why a done item has no tiles


class ContactSheet:
    """Collects the rows of one run and writes each page when its items are all finished.

    :meth:`record` is called by the writing threads, :meth:`complete` and :meth:`close` by the thread that runs the
    loop; rows are placed by item, so the order in which items finish does not matter.
    """

    def __init__(
        self,
        path: Path,
        rows: Sequence[tuple[str, str]],
        *,
        overwrite: bool = False,
        protect: Sequence[Path] = (),
        jpeg_quality: int = 95,
    ):
        """``rows``: (stem, caption name) of every item, in sheet order. ``protect``: files never to be written."""
        self.path = Path(path)
        self.pages = page_paths(self.path, len(rows))
        self.per_page = ROWS_PER_PAGE  # fixed now: page_paths and the drawing must agree
        self.overwrite, self.protect, self.jpeg_quality = overwrite, tuple(protect), jpeg_quality
        self._index = {stem: i for i, (stem, _) in enumerate(rows)}
        self._rows = [_Row(name) for _, name in rows]
        self._pending = set(range(len(self.pages)))
        self._lock = threading.Lock()
        self.written: list[Path] = []
        self.errors: list[str] = []

    # ------------------------------------------------------------------------------------ collecting

    def record(self, inputs: "LoadedInputs", harmonized: np.ndarray, output: np.ndarray) -> None:
        """A written item's tiles and change (any thread). ``harmonized``: the composite with the adjustment applied
        (what the change is measured on); ``output``: the picture the output file holds."""
        index = self._index.get(inputs.item.stem)
        if index is None:
            return
        try:
            before, after = _tiles(inputs, output)
            change = mean_change(inputs.composite, harmonized, inputs.mask)
        except Exception as exc:  # the output is written: a thumbnail problem must not turn the item into a failure
            with self._lock:
                self._rows[index].message = f"no thumbnail: {failure_message(exc)}"
            return
        with self._lock:
            row = self._rows[index]
            row.before, row.after, row.change = before, after, change
            if inputs.mask_is_empty:
                row.message = "empty mask, unchanged"

    def complete(self, result: ItemResult) -> list[str]:
        """An item's result is in (the loop's thread): writes its page if that was the page's last item. Returns
        the messages of pages that could not be written (also kept in :attr:`errors`)."""
        index = self._index.get(result.stem)
        if index is None:
            return []
        with self._lock:
            row = self._rows[index]
            row.status = result.status
            if result.status != "done":
                row.before = row.after = None
                row.message = result.message
        page = index // self.per_page
        rows = self._rows[page * self.per_page : (page + 1) * self.per_page]
        if page in self._pending and all(r.status is not None for r in rows):
            return self._write(page)
        return []

    def close(self) -> list[str]:
        """Write the pages still open (only after a run that did not report every item: their rows say so)."""
        errors: list[str] = []
        for page in sorted(self._pending):
            for row in self._rows[page * self.per_page : (page + 1) * self.per_page]:
                if row.status is None:
                    row.status, row.message = "skipped", "not processed"
            errors += self._write(page)
        return errors

    def describe(self) -> str:
        """The pages written, for the run's summary."""
        if not self.written:
            return "contact sheet: not written"
        if len(self.written) == 1 and len(self.pages) == 1:
            return f"contact sheet: {self.written[0]}"
        names = [str(p) for p in sorted(self.written)]  # pages are written as they fill up, not always in order
        if len(names) > 4:
            names = [names[0], names[1], "...", names[-1]]
        return f"contact sheet, {len(self.written)} pages of up to {self.per_page} rows: {', '.join(names)}"

    # ------------------------------------------------------------------------------------ drawing

    def _write(self, page: int) -> list[str]:
        from harmcli.io.images import write_image

        self._pending.discard(page)
        rows = self._rows[page * self.per_page : (page + 1) * self.per_page]
        try:
            picture = render_page(rows)
            path = write_image(
                self.pages[page], picture, jpeg_quality=self.jpeg_quality, protect=self.protect, overwrite=self.overwrite
            )
        except HarmcliError as exc:
            self.errors.append(str(exc))
            return [str(exc)]
        finally:
            for row in rows:  # the page is drawn: its thumbnails are not needed any more
                row.before = row.after = None
        self.written.append(Path(path))
        return []


def render_page(rows: Sequence[_Row]) -> np.ndarray:
    """One page (H, W, 3) uint8 RGB, laid out as the module docstring says."""
    from harmcli.ops.drawing import put_text, put_wrapped

    widths = [
        row.before.shape[1] + PAD + row.after.shape[1] if _has_tiles(row) else PLACEHOLDER_WIDTH for row in rows
    ]
    width = PAD + max([PLACEHOLDER_WIDTH, *widths]) + PAD
    canvas = np.empty((PAD + len(rows) * ROW_HEIGHT, width, 3), np.uint8)
    canvas[:] = CANVAS
    for r, row in enumerate(rows):
        top = PAD + r * ROW_HEIGHT
        colour = _CAPTION_COLOURS.get(row.status or "skipped", _CAPTION_COLOURS["done"])
        put_text(canvas, caption(row), PAD, top + 14, width - 2 * PAD, color=colour)
        y = top + CAPTION
        if _has_tiles(row):
            x = PAD
            for tile in (row.before, row.after):
                dy = (TILE_HEIGHT - tile.shape[0]) // 2
                canvas[y + dy : y + dy + tile.shape[0], x : x + tile.shape[1]] = tile
                x += tile.shape[1] + PAD
            continue
        canvas[y : y + TILE_HEIGHT, PAD : PAD + PLACEHOLDER_WIDTH] = PLACEHOLDER_FILL
        put_text(canvas, (row.status or "skipped").upper(), PAD + 10, y + 26, PLACEHOLDER_WIDTH - 20, color=colour)
        put_wrapped(canvas, row.message, PAD + 10, y + 52, PLACEHOLDER_WIDTH - 20, max_lines=11, line_height=18)
    return canvas


def caption(row: _Row) -> str:
    """The line above a row: the item's name and what became of it."""
    if _has_tiles(row):
        note = f" ({row.message})" if row.message else ""
        return f"{row.name}   before | after   mean change in mask: {row.change:.1f} levels{note}"
    return f"{row.name}   {row.status or 'skipped'}: {row.message}"


def _has_tiles(row: _Row) -> bool:
    return row.status == "done" and row.before is not None and row.after is not None


def _tiles(inputs: "LoadedInputs", output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The item's before and after tiles, 8-bit sRGB RGB.

    *Before* is what the output would be with the adjustment off: the composite, under a PSD's layers above the
    subject and in gray for a gray output, like the output itself; so the two tiles differ by the harmonization
    alone. The mask's outline goes on *before* only: *after* stays exactly the output, to judge its colours by.
    """
    from harmcli.io.images import gray_from_rgb
    from harmcli.ops.drawing import draw_outline, resize_to, thumb_size

    size = thumb_size(inputs.composite.shape, TILE_HEIGHT, MAX_TILE_WIDTH)
    composite = inputs.composite
    if inputs.overlay is not None:
        # At full size, as for the output (drawn at tile size, the layers' edges came out a few levels off): a
        # transient picture no bigger than the one the output was just made from, dropped at once.
        composite = inputs.overlay.draw(composite, None)[0]
    before = resize_to(composite, size)
    del composite
    if inputs.gray:
        before = gray_from_rgb(before)
    after = resize_to(output, size)
    before, after = _display(before, inputs), _display(after, inputs)
    draw_outline(before, inputs.mask)
    return before, after


def _display(tile: np.ndarray, inputs: "LoadedInputs") -> np.ndarray:
    """A tile as 8-bit sRGB RGB: gray as three equal channels; RGB converted from the output's profile."""
    import cv2

    from harmcli.io.colour import as_srgb
    from harmcli.ops.drawing import to_uint8

    if tile.ndim == 2:
        return cv2.cvtColor(to_uint8(tile), cv2.COLOR_GRAY2RGB)
    icc = inputs.metadata.icc if inputs.metadata is not None else None
    if icc is not None:
        try:
            tile = as_srgb(tile, icc, inputs.mask_name)
        except HarmcliError:  # a profile that cannot be used was already reported on reading; show the pixels as is
            pass
    return np.ascontiguousarray(to_uint8(tile))


def open_sheet(
    path: Path, spec: "InputSpec", plan: "Plan", layout: "OutputLayout", job: "HarmonizeJob"
) -> tuple[ContactSheet | None, str]:
    """The contact sheet of the run ``plan`` describes, checked before any item is processed: never an input, an
    item's output or inside an input folder; an existing sheet file is an error without --overwrite (nothing is
    processed), and with --skip-existing it is kept and no sheet is made (returns None and a note saying so)."""
    order = sorted(
        [(item.stem, layout.output_for(item)[0].name) for item in plan.items]
        + [(failure.stem, failure.stem) for failure in plan.failures]
    )
    existing = job.existing
    sheet = ContactSheet(
        path, order, overwrite=existing == "overwrite", protect=job.protect, jpeg_quality=job.jpeg_quality
    )
    # Resolved names once, not a file-system call per page and item: folders of thousands of items.
    inputs = {_resolved(p) for item in plan.items for p in job.protected(item)}
    outputs = {
        _resolved(t) for item in plan.items for out in (layout.output_for(item)[0], *job.extra_outputs)
        for t in written_with(out)
    }
    folders = [(role, p) for role, p in spec.roles() if p.is_dir()]
    for page in sheet.pages:
        if page.is_dir():
            raise ImageWriteError(f"cannot write '{page}': a folder of that name exists")
        for role, folder in folders:
            if same_file(page.parent, folder):
                raise ImageWriteError(
                    f"{page}: the contact sheet would go into the {role} input folder, where a later run would read it "
                    "as an input; choose another --sheet path"
                )
        if _resolved(page) in inputs or (page.exists() and _is_linked_to(page, plan, job)):
            raise ImageWriteError(f"{page}: this is an input file; choose another --sheet path (inputs are never overwritten)")
        if _resolved(page) in outputs:
            raise ImageWriteError(f"{page}: an item's output has this name; choose another --sheet path")
    found = next((p for p in sheet.pages if p.exists()), None)
    if found is not None and existing == "error":
        raise OutputExistsError(f"{found}: already exists; pass --overwrite to replace it or --skip-existing to keep it", found)
    if found is not None and existing == "skip":
        return None, f"{found} exists (--skip-existing): kept it, no contact sheet written"
    return sheet, ""


def _resolved(path: Path) -> Path:
    return Path(path).resolve()


def _is_linked_to(page: Path, plan: "Plan", job: "HarmonizeJob") -> bool:
    """Whether an existing ``page`` is one of the inputs under another name (a hard link), which --overwrite would
    replace; asked only of a page that exists, so one stat per input."""
    return any(same_file(page, p) for item in plan.items for p in job.protected(item))
