"""Reading one item into memory: the composite, the background, the mask and the output's alpha; and placing a
foreground of another size on its background (:func:`place_foreground`, shared with clips)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from harmcli.batch.inputs import InputSpec, Item, Placement
from harmcli.errors import InputMismatchError

if TYPE_CHECKING:
    from harmcli.io.metadata import ImageMetadata
    from harmcli.io.psd import Overlay, PsdComposite

# A mask whose every pixel is at least this much foreground leaves nothing to harmonize against.
ALL_FOREGROUND = 1.0 - 1e-3


class InputReader:
    """Reads items; a file shared by every item (one background for many foregrounds) is read only once.

    What reading a file had to say (a 0/1 mask read as binary, frames or channels left out) goes to the
    item's :attr:`LoadedInputs.notes`; for a shared file, once, to :attr:`shared_notes` when it is preloaded.
    """

    def __init__(self, *, max_pixels: int, placement: Placement | None = None, layer: str | None = None):
        """``placement``: where each foreground goes on its background (``--at``, ``--scale``); None = the
        foreground and the background must have the same size. ``layer``: the name of a PSD's subject layer
        (``--layer``; None = its top visible pixel layer)."""
        self.max_pixels = max_pixels
        self.placement = placement
        self.layer = layer
        self._shared: dict[tuple[str, Path], object] = {}
        self.shared_notes: list[str] = []

    def preload(self, spec: InputSpec) -> None:
        """Read the file inputs of a folder-mode spec now: a bad shared file fails the command, not each item."""
        for role, path in spec.roles():
            if path.is_file() and (role, path) not in self._shared:
                self._shared[(role, path)] = self._read(role, path, self.shared_notes)

    def _read(self, role: str, path: Path, notes: list[str]):
        from harmcli.io.images import read_image, read_mask

        if (role, path) in self._shared:
            return self._shared[(role, path)]
        if role == "mask":
            return read_mask(path, size=None, max_pixels=self.max_pixels, notes=notes)
        image = read_image(path, max_pixels=self.max_pixels)
        notes.extend(image.notes)
        return image

    def _mask(self, path: Path, size: tuple[int, int], against: Path, notes: list[str]) -> np.ndarray:
        from harmcli.io.images import read_mask, swapped_size_hint

        if ("mask", path) in self._shared or self.placement is not None:
            mask = self._read("mask", path, notes)
            if mask.shape[:2] != tuple(size):
                if self.placement is not None:
                    hint = " (with --at the mask must have the foreground's size: it is placed with it)"
                else:
                    hint = swapped_size_hint(mask.shape, size)
                raise InputMismatchError(
                    f"{path}: mask is {_size_text(mask.shape)} but {against} is {_size_text(size)}; "
                    f"they must be the same size{hint}"
                )
            return mask
        return read_mask(path, size=tuple(size), max_pixels=self.max_pixels, notes=notes)

    def load(self, item: Item) -> LoadedInputs:
        from harmcli.ops.apply import mask_to_float

        if item.form == "psd":
            return self._load_psd(item)
        notes: list[str] = []
        first = "composite" if item.form == "composite" else "foreground"
        primary = self._read(first, item.primary, notes)
        size = primary.rgb.shape[:2]
        if item.form == "composite":
            mask = self._mask(item.mask, size, item.primary, notes)
            composite = background = primary.rgb
            alpha = primary.alpha
            mask_name = str(item.mask)
            metadata = primary.metadata
            gray = primary.gray
        else:
            from harmcli.io.images import swapped_size_hint
            from harmcli.ops.paste import make_composite

            back = self._read("background", item.background, notes)
            if self.placement is None and back.rgb.shape[:2] != size:
                raise InputMismatchError(
                    f"{item.background}: background is {_size_text(back.rgb.shape)} but foreground {item.primary} is "
                    f"{_size_text(size)}; they must be the same size, or pass --at X,Y (or --at center) to place a "
                    f"smaller cutout{swapped_size_hint(back.rgb.shape, size)}"
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
                mask = self._mask(item.mask, size, item.primary, notes)
                mask_name = str(item.mask)
            foreground_rgb, converted = in_background_space(
                primary.rgb, primary.metadata.icc, back.metadata.icc, primary.path
            )
            notes.extend(converted)
            # The output follows the background in everything that is a file's format (profile and metadata,
            # alpha, and so also gray or colour): a colour foreground pasted on a gray plate comes out gray. A gray
            # profile takes no part in the conversion above (conversions are between RGB spaces), so such a
            # foreground is brought into sRGB, as for an untagged background, and its luma becomes its gray.
            metadata = back.metadata
            gray = back.gray
            if gray and not primary.gray and not _equal_channels(primary.rgb):
                notes.append(
                    f"{item.primary}: the background {item.background} is grayscale, so the output is too: the "
                    "foreground's colours are written as gray"
                )
            dtype = np.promote_types(primary.rgb.dtype, back.rgb.dtype)
            foreground, background = _promote(foreground_rgb, dtype), _promote(back.rgb, dtype)
            if self.placement is not None:
                foreground, mask = place_foreground(
                    self.placement, foreground, mask, background, max_pixels=self.max_pixels,
                    foreground_name=item.primary, background_name=item.background,
                )
            composite = make_composite(foreground, background, mask)
            alpha = _over(mask, back.alpha) if back.alpha is not None else None
        if mask.size and float(mask.min()) >= ALL_FOREGROUND:
            raise InputMismatchError(
                f"{mask_name}: the mask is foreground everywhere; harmonization needs some background to match against"
            )
        bit_depth = 16 if composite.dtype == np.uint16 else 8
        return LoadedInputs(item, composite, background, mask, alpha, bit_depth, mask_name, metadata, notes, gray)

    def _load_psd(self, item: Item) -> LoadedInputs:
        """A layered Photoshop file: its subject layer pasted on the layers below it, exactly as the same pixels given
        as FG BG (the subject with its coverage as alpha, the background as composited) are; the layers above the
        subject go to :attr:`LoadedInputs.overlay`, to be drawn over the result."""
        from harmcli.io.psd import read_psd
        from harmcli.ops.apply import mask_to_float
        from harmcli.ops.paste import make_composite

        psd = read_psd(item.primary, max_pixels=self.max_pixels, layer=self.layer)
        mask = mask_to_float(psd.coverage)
        if mask.size and float(mask.min()) >= ALL_FOREGROUND:
            raise InputMismatchError(
                f"{psd.describe}: the subject covers the whole canvas; harmonization needs some background to match against"
            )
        composite = make_composite(psd.foreground, psd.background, mask)
        alpha = _over(mask, psd.background_alpha) if psd.background_alpha is not None else None
        return LoadedInputs(
            item, composite, psd.background, mask, alpha, psd.bit_depth, psd.describe, psd.metadata, [], psd.gray,
            overlay=psd.overlay, psd=psd,
        )


def place_foreground(
    placement: Placement,
    foreground: np.ndarray,
    mask: np.ndarray,
    background: np.ndarray,
    *,
    max_pixels: int,
    foreground_name,
    background_name,
) -> tuple[np.ndarray, np.ndarray]:
    """The foreground (H, W, C) and its (H, W) mask scaled and moved onto the background's canvas as ``placement``
    says (``--at``, ``--scale``); from here on the pair is the background's size, like a same-size FG BG pair.

    ``foreground`` must have the background's dtype and channels. ``mask`` may be uint8, uint16 or float32: it keeps
    its dtype when only moved (a copy of its values), and is float32 in [0, 1] when resized. Errors as
    :func:`placement_geometry`; the names are the files (or frames) the messages point to. Used by still images
    (:class:`InputReader`) and by clips (:class:`harmcli.clip.sources.ClipInputs`), frame by frame.
    """
    from harmcli.ops.apply import mask_to_float
    from harmcli.ops.paste import place_cutout, resize_cutout

    size, (x, y) = placement_geometry(
        placement, mask.shape[:2], background.shape[:2], max_pixels=max_pixels, foreground_name=foreground_name,
        background_name=background_name,
    )
    if size != tuple(mask.shape[:2]):
        foreground, mask = resize_cutout(foreground, mask_to_float(mask), size)
    return place_cutout(foreground, mask, background, x, y)


def placement_geometry(
    placement: Placement,
    size: Sequence[int],
    canvas: Sequence[int],
    *,
    max_pixels: int,
    foreground_name,
    background_name,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where ``placement`` puts a foreground of ``size`` (H, W) on a background of ``canvas`` (H, W): the
    foreground's (H, W) after ``--scale`` and the (x, y) of its top-left corner.

    Raises InputMismatchError when the scaled foreground would be less than one pixel across or more than
    ``max_pixels``, or would miss the background entirely. Needs only the sizes, so a clip whose sizes are known
    before decoding is checked up front.
    """
    from harmcli.ops.paste import centred_origin, covered_window, scaled_size

    size, canvas = (int(size[0]), int(size[1])), (int(canvas[0]), int(canvas[1]))
    placed_size = size
    if placement.scale != 1:
        placed_size = scaled_size(*size, placement.scale)
        height, width = placed_size
        if height < 1 or width < 1:
            raise InputMismatchError(
                f"{foreground_name}: the {_size_text(size)} foreground scaled by {placement.scale:g} would be less "
                "than one pixel across; use a larger --scale"
            )
        if height * width > max_pixels:
            raise InputMismatchError(
                f"{foreground_name}: the {_size_text(size)} foreground scaled by {placement.scale:g} would be "
                f"{width}x{height}, more than --max-pixels ({max_pixels}); use a smaller --scale"
            )
    x, y = placement.origin if placement.origin is not None else centred_origin(placed_size, canvas)
    if covered_window(placed_size, canvas, x, y) is None:
        scaled = f" (scaled by {placement.scale:g})" if placement.scale != 1 else ""
        raise InputMismatchError(
            f"{foreground_name}: the {_size_text(placed_size)} foreground{scaled} placed at {x},{y} lies entirely "
            f"outside the {_size_text(canvas)} background {background_name}; --at X,Y is its top-left corner in "
            "background pixels"
        )
    return placed_size, (x, y)


def in_background_space(
    rgb: np.ndarray, source: bytes | None, target: bytes | None, name
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A foreground's pixels ``rgb`` in profile ``source`` converted into the background's profile ``target`` (the
    output's), and a note naming ``name`` when converted (or when a profile cannot be used)."""
    from harmcli.io import colour

    if colour.same_space(source, target):
        return rgb, ()
    try:
        converted, narrowed = colour.convert(rgb, source, target)
    except colour.ProfileError as exc:
        return rgb, (
            f"{name}: not converted into the background's colour space: its profile or the background's "
            f"cannot be used ({exc}); pasted as it is",
        )
    note = (
        f"{name}: converted the foreground from {colour.profile_name(source)!r} into the background's "
        f"colour space ({colour.profile_name(target)!r})"
    )
    if narrowed:
        note += " at 8-bit precision (LUT-based profiles)"
    return converted, (note,)


@dataclass
class LoadedInputs:
    """One item read into memory: what the network sees and what the output is made from.

    ``composite`` and ``background`` are (H, W, 3) uint8 or uint16 RGB of the same dtype; ``mask`` is (H, W)
    float32 in [0, 1]; ``alpha`` is the output's alpha channel (None = opaque). ``gray``: the output is written
    gray (one channel, plus alpha), because the file it follows (the composite, or the background) is grayscale;
    the arrays are RGB all the same, the network and the curves working on three channels.
    """

    item: Item
    composite: np.ndarray
    background: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mask_name: str = ""  # the mask's file, for messages
    metadata: "ImageMetadata | None" = None  # what the output inherits: the background's, or the composite's
    notes: list[str] = field(default_factory=list)  # warnings: what reading had to say, a colour conversion
    gray: bool = False
    # A PSD's visible layers above its subject (harmcli.io.psd.Overlay): drawn over the harmonized picture, so the
    # output is the flattened document. None for other inputs.
    overlay: "Overlay | None" = None
    psd: "PsdComposite | None" = None  # the PSD it came from, for a .psd output (harmcli.io.psd.write_psd)

    @property
    def mask_is_empty(self) -> bool:
        return not bool(self.mask.any())


def _equal_channels(rgb: np.ndarray) -> bool:
    """Whether an (H, W, 3) image is neutral everywhere (a black-and-white picture saved as RGB)."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


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

