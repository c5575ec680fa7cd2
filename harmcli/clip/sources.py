"""Where a clip's frames come from: video files, numbered frame folders and still images, read in lockstep.

Every input of ``harmonize`` (composite or foreground, background, mask) may be a video file, a folder of frames
(read in name order; with frame numbers in the names, a gap is a missing frame) or one still image, used for
every frame (a background plate, a fixed mask). :class:`ClipInputs` checks what can be checked before any
frame is decoded (frame rates, frame sizes, frame counts where the files state them) and :meth:`ClipInputs.frames`
yields the frames, raising :class:`~harmcli.errors.InputMismatchError` when inputs disagree later on. With a
:class:`~harmcli.batch.Placement` (``--at``, ``--scale``) the foreground and its mask may have another size than the
background: each frame is placed on the background's as a still image is (one implementation,
:func:`harmcli.batch.reading.place_foreground`), and the clip has the background's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from harmcli.batch import ALL_FOREGROUND, InputSpec, Placement, list_images
from harmcli.errors import ImageReadError, InputMismatchError, UsageError
from harmcli.io.images import READ_EXTENSIONS
from harmcli.io.metadata import ImageMetadata
from harmcli.io.video import VideoInfo, VideoReader, is_video_input, probe

# Codecs whose mask values survive exactly; a mask in anything else carries compression noise.
LOSSLESS_VIDEO_CODECS = ("ffv1", "png", "qtrle", "utvideo", "rawvideo", "huffyuv", "ffvhuff")
_FRAME_NUMBER = re.compile(r"(\d+)$")
_FULL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def describe_rate(rate: Fraction) -> str:
    text = f"{float(rate):.6g}"
    return text if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator} ({float(rate):.3f})"


class Source:
    """One input: frames in order. ``count`` None = unknown until read (or endless for a still)."""

    role: str
    path: Path
    count: int | None = None
    rate: Fraction | None = None
    size: tuple[int, int] | None = None  # (H, W) when known up front
    still = False

    def frames(self) -> Iterator[tuple[object, int | None]]:  # pragma: no cover
        raise NotImplementedError

    def where(self, index: int) -> str:
        return f"{self.path} frame {index + 1}"


class VideoSource(Source):
    """``mode``: VideoReader's; None reads RGBA when the file has an alpha channel (a composite's or background's,
    which the output keeps), RGB otherwise."""

    def __init__(self, role: str, path: Path, mode: str | None):
        self.role, self.path = role, path
        self.info: VideoInfo = probe(path)
        self.mode = mode or ("rgba" if self.info.has_alpha else "rgb")
        self.count, self.rate = self.info.frames, self.info.rate
        self.size = (self.info.height, self.info.width)
        self.reader = None

    def frames(self):
        self.reader = VideoReader(self.path, self.mode, self.info)
        # Masks stay uint8: every consumer takes them, and apply's 8-bit mask path is the fastest.
        yield from self.reader

    @property
    def color(self):
        return self.reader.color if self.reader is not None else None


class FolderSource(Source):
    """Image files of a folder in name order; with frame numbers in the names they must be consecutive."""

    def __init__(self, role: str, path: Path, max_pixels: int):
        self.role, self.path, self.max_pixels = role, path, max_pixels
        self.files = list_images(path, READ_EXTENSIONS)
        if not self.files:
            raise ImageReadError(f"{path}: no images in this folder (looked for {', '.join(READ_EXTENSIONS)})")
        self.count = len(self.files)
        numbers = [_FRAME_NUMBER.search(f.stem) for f in self.files]
        if all(numbers):
            values = [int(m.group(1)) for m in numbers]
            order = sorted(range(len(values)), key=values.__getitem__)
            self.files = [self.files[i] for i in order]
            values = sorted(values)
            if len(set(values)) != len(values):
                dup = next(v for v in values if values.count(v) > 1)
                raise InputMismatchError(f"{path}: two files carry frame number {dup}; keep one")
            for a, b in zip(values, values[1:]):
                if b != a + 1:
                    raise InputMismatchError(
                        f"{path}: frame {a + 1} is missing (the files go from {values[0]} to {values[-1]} with a gap "
                        f"after {a}); every frame needs its file"
                    )

    def frames(self):
        from harmcli.io.images import read_image, read_mask

        for f in self.files:
            if self.role == "mask":
                yield read_mask(f, max_pixels=self.max_pixels), None
            else:
                yield read_image(f, max_pixels=self.max_pixels), None

    def where(self, index: int) -> str:
        return str(self.files[index]) if index < len(self.files) else f"{self.path} frame {index + 1}"


class StillSource(Source):
    still = True

    def __init__(self, role: str, path: Path, max_pixels: int):
        from harmcli.io.images import read_image, read_mask

        self.role, self.path = role, path
        self.value = read_mask(path, max_pixels=max_pixels) if role == "mask" else read_image(path, max_pixels=max_pixels)
        shape = self.value.shape if role == "mask" else self.value.rgb.shape
        self.size = tuple(shape[:2])

    def frames(self):
        while True:
            yield self.value, None

    def where(self, index: int) -> str:
        return str(self.path)


@dataclass
class Frame:
    """One frame of the clip, ready to harmonize: RGB composite and background of one dtype, float mask."""

    index: int
    pts: int | None
    composite: np.ndarray
    background: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray | None
    name: str  # for messages: which file (and frame) it came from
    # What an output frame inherits (profile, EXIF, resolution, XMP, IPTC): the composite's, or with FG BG the
    # background's, as for images; None for video frames, which carry none.
    metadata: ImageMetadata | None = None


def is_clip(inputs: list[Path], mask: Path | None, sequence: bool) -> bool:
    """A clip when any input is a video file, or --sequence asks for folders to be read as clips."""
    return sequence or any(is_video_input(p, READ_EXTENSIONS) for p in [*inputs, *([mask] if mask else [])])


class ClipInputs:
    """The clip's inputs opened as sources, checked against each other before decoding."""

    def __init__(self, spec: InputSpec, *, sequence: bool, max_pixels: int, placement: Placement | None = None):
        """``placement``: where the foreground (and its mask, of the foreground's size) goes on the background
        (``--at``, ``--scale``; FG BG [MASK] only); None = every input must have the same size."""
        if placement is not None and spec.form == "composite":
            raise UsageError("--at places a foreground on a background: give FG BG [MASK], not COMPOSITE --mask")
        self.spec = spec
        self.placement = placement
        self.max_pixels = max_pixels
        self.sources: dict[str, Source] = {}
        # Said once however many frames (and passes) they concern: an ordered set.
        self._colour_notes: dict[str, None] = {}
        self.pairing_notes: list[str] = []  # inputs paired in order though their stated rates differ
        for role, path in spec.roles():
            if is_video_input(path, READ_EXTENSIONS):
                if not path.is_file():
                    raise ImageReadError(f"{path}: no such file ({role})")
                if role == "mask":
                    mode = "gray"
                elif role == "foreground":  # its alpha is the mask in FG BG; with a mask video it is not used
                    mode = "rgba" if spec.form == "alpha" else "rgb"
                else:
                    mode = None
                self.sources[role] = VideoSource(role, path, mode)
            elif path.is_dir():
                self.sources[role] = FolderSource(role, path, max_pixels)
            else:
                self.sources[role] = StillSource(role, path, max_pixels)
        first = "composite" if spec.form == "composite" else "foreground"
        self.primary = self.sources[first]
        # The video whose frame rate, timestamps and colour tagging the output takes: the composite or foreground
        # when it is a video, else the first other input that is (a frame folder over a background video runs at
        # the video's rate). None: no input is a video.
        videos = [s for s in self.sources.values() if isinstance(s, VideoSource)]
        self.timing: VideoSource | None = (
            self.primary if isinstance(self.primary, VideoSource) else next(iter(videos), None)
        )
        moving = [s for s in self.sources.values() if not s.still]
        if not moving:
            raise UsageError(
                "every input is a single image: nothing to read as a clip (give a video, or a frame folder with --sequence)"
            )
        if self.primary.still:
            raise UsageError(
                f"{self.primary.path}: the {first} is a single image but other inputs are clips; the {first} must be "
                "the clip (a still may be the background or the mask)"
            )
        if isinstance(self.primary, FolderSource) and not sequence:
            raise UsageError(f"{self.primary.path}: a frame folder is read as a clip with --sequence")
        self._check_rates(moving)
        self._check_sizes()
        self._check_counts(moving)

    def _check_rates(self, moving: list[Source]) -> None:
        rated = [s for s in moving if s.rate is not None]
        for s in rated[1:]:
            if s.rate != rated[0].rate:
                if s.count is not None and s.count == rated[0].count:
                    # A phone's variable-rate clip states its average rate (e.g. 27.93); a mask made from it by
                    # another tool is often written at the nominal 30. The same number of frames says that they
                    # correspond one to one, which is how frames are paired anyway.
                    self.pairing_notes.append(
                        f"{s.path} runs at {describe_rate(s.rate)} fps and {rated[0].path} at "
                        f"{describe_rate(rated[0].rate)} fps; both have {s.count} frames, paired in order (the output "
                        f"takes {self.timing.path if self.timing is not None else rated[0].path}'s timing)"
                    )
                    continue
                raise InputMismatchError(
                    f"{s.path} runs at {describe_rate(s.rate)} fps but {rated[0].path} at {describe_rate(rated[0].rate)} "
                    "fps; convert one so that frames correspond"
                )

    def _check_sizes(self) -> None:
        if self.placement is not None:
            self._check_placement()
            return
        sized = [s for s in self.sources.values() if s.size is not None]
        for s in sized[1:]:
            if s.size != sized[0].size:
                hint = _turned_hint(s, sized[0])
                if not hint and "background" in (s.role, sized[0].role) and "foreground" in (s.role, sized[0].role):
                    hint = ", or pass --at X,Y (or --at center) to place a smaller foreground"
                raise InputMismatchError(
                    f"{s.path} ({s.role}) is {s.size[1]}x{s.size[0]} but {sized[0].path} is "
                    f"{sized[0].size[1]}x{sized[0].size[0]}; they must be the same size{hint}"
                )

    def _check_placement(self) -> None:
        """With --at: the foreground and its mask are the cutout and must have one size; the background, of any
        size, is the canvas. Where the sizes are known before decoding (videos, stills) the placement itself is
        checked now too: a --scale that makes the cutout too small or too large, or a cutout that misses the
        background, fails before the first frame (a frame folder's frames are checked as they are read)."""
        from harmcli.batch.reading import placement_geometry

        foreground, mask, background = self.primary, self.sources.get("mask"), self.sources["background"]
        if mask is not None and None not in (foreground.size, mask.size) and mask.size != foreground.size:
            raise InputMismatchError(
                f"{mask.path} (mask) is {mask.size[1]}x{mask.size[0]} but the foreground {foreground.path} is "
                f"{foreground.size[1]}x{foreground.size[0]}; with --at the mask must have the foreground's size"
                f"{_turned_hint(mask, foreground)}"
            )
        if foreground.size is not None and background.size is not None:
            placement_geometry(
                self.placement, foreground.size, background.size, max_pixels=self.max_pixels,
                foreground_name=foreground.path, background_name=background.path,
            )

    def _check_counts(self, moving: list[Source]) -> None:
        counted = [s for s in moving if s.count is not None]
        for s in counted[1:]:
            if s.count != counted[0].count:
                raise InputMismatchError(_count_message(counted[0], counted[0].count, s, s.count))

    @property
    def rate(self) -> Fraction | None:
        return self.timing.rate if self.timing is not None else self.primary.rate

    @property
    def count(self) -> int | None:
        return self.primary.count

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W) of the output frames when known before decoding: the background's with a placement, else the
        composite's or foreground's (None for a frame folder)."""
        return self.sources["background"].size if self.placement is not None else self.primary.size

    decoded: int | None = None  # frames read by the last complete pass over the inputs

    def short_videos(self) -> list[str]:
        """Notes for videos whose header promises more frames than could be decoded, by its frame count or, where
        it states none, its duration (a damaged or cut file; some files' counts are only approximate, so this is
        said, not refused)."""
        if self.decoded is None:
            return []
        notes = []
        for s in self.sources.values():
            if not isinstance(s, VideoSource):
                continue
            if s.count is not None:
                if s.count > self.decoded:
                    notes.append(f"{s.path}: the file says {s.count} frames but {self.decoded} could be decoded (cut "
                                 "short or damaged?)")
            elif s.info.duration and s.rate:
                # Matroska and WebM state no frame count but a duration, which a cut file keeps: short by more than
                # a frame (and half one for times rounded to the millisecond and average rates) is said.
                if s.info.duration - Fraction(self.decoded) / s.rate > Fraction(3, 2) / s.rate:
                    notes.append(f"{s.path}: the file says {float(s.info.duration):.3g} s (about "
                                 f"{round(s.info.duration * s.rate)} frames) but {self.decoded} frames could be "
                                 "decoded (cut short or damaged?)")
        return notes

    def lossy_masks(self) -> list[str]:
        mask = self.sources.get("mask")
        if isinstance(mask, VideoSource) and mask.info.codec not in LOSSLESS_VIDEO_CODECS:
            return [f"{mask.path} ({mask.info.codec})"]
        return []

    def tags_source(self) -> Path | None:
        """The video whose container metadata the output carries, as an image output inherits its input's: the
        composite's, or with a foreground and a background the background's (None when that is not a video)."""
        role = "composite" if self.spec.form == "composite" else "background"
        source = self.sources.get(role)
        return source.path if isinstance(source, VideoSource) else None

    def audio_source(self) -> Path | None:
        """The first video input with sound: the composite/foreground, then the background."""
        for role in ("composite", "foreground", "background"):
            s = self.sources.get(role)
            if isinstance(s, VideoSource) and s.info.has_audio:
                return s.path
        return None

    @property
    def colour_notes(self) -> list[str]:
        """What was converted between colour spaces (or could not be), once each."""
        return list(self._colour_notes)

    def _in_background_space(self, fg: np.ndarray, fg_value, bg_value) -> np.ndarray:
        """A foreground frame in the background's colour space (the output's), as for images: a frame of a
        folder or a still carries its own profile; a video frame none (taken as sRGB, which Rec. 709 video
        shares its primaries with). Notes name the clip, so each is said once."""
        from harmcli.batch.reading import in_background_space

        source = getattr(getattr(fg_value, "metadata", None), "icc", None)
        target = getattr(getattr(bg_value, "metadata", None), "icc", None)
        converted, notes = in_background_space(fg, source, target, self.primary.path)
        self._colour_notes.update(dict.fromkeys(notes))
        return converted

    def frames(self) -> Iterator[Frame]:
        """Every frame, in order; inputs that end early or run long raise InputMismatchError."""
        from harmcli.batch.reading import _over, _promote, place_foreground
        from harmcli.ops.apply import mask_to_float
        from harmcli.ops.paste import make_composite

        roles = list(self.sources)
        iterators = {role: self.sources[role].frames() for role in roles}
        form = self.spec.form
        first = "composite" if form == "composite" else "foreground"
        try:
            index = 0
            while True:
                values = {}
                for role in roles:
                    try:
                        values[role] = next(iterators[role])
                    except StopIteration:
                        values[role] = None
                ended = [r for r in roles if values[r] is None]
                if ended:
                    going = [r for r in roles if values[r] is not None and not self.sources[r].still]
                    if not going:
                        self.decoded = index
                        return
                    longer = self.sources[going[0]]
                    rest = sum(1 for _ in iterators[going[0]])  # only on this error: a few frames more to decode
                    raise InputMismatchError(_count_message(longer, index + 1 + rest, self.sources[ended[0]], index))
                primary, pts = values[first]
                if self.timing is not None and self.timing is not self.primary:
                    pts = values[self.timing.role][1]
                name = self.primary.where(index)
                size = _rgb_of(primary).shape[:2]
                if self.placement is None:
                    for role in roles:
                        shape = _rgb_of(values[role][0]).shape[:2]
                        if shape != size:
                            raise InputMismatchError(
                                f"{self.sources[role].where(index)} is {shape[1]}x{shape[0]} but {name} is "
                                f"{size[1]}x{size[0]}; every frame must have the same size"
                            )
                elif "mask" in values:  # the background is the canvas: any size
                    shape = values["mask"][0].shape[:2]
                    if shape != size:
                        raise InputMismatchError(
                            f"{self.sources['mask'].where(index)} is {shape[1]}x{shape[0]} but the foreground {name} "
                            f"is {size[1]}x{size[0]}; with --at the mask must have the foreground's size"
                        )
                if form == "composite":
                    rgb, alpha = _split(primary)
                    mask = values["mask"][0]
                    composite = background = rgb
                    mask_name = self.sources["mask"].where(index)
                else:
                    fg, fg_alpha = _split(primary)
                    back, back_alpha = _split(values["background"][0])
                    if form == "alpha":
                        if fg_alpha is None:
                            raise InputMismatchError(
                                f"{self.primary.path}: the foreground has no alpha channel to use as the mask; give a "
                                "mask: harmcli harmonize FG BG MASK"
                            )
                        mask = fg_alpha
                        mask_name = f"{name} (alpha)"
                    else:
                        mask = values["mask"][0]
                        mask_name = self.sources["mask"].where(index)
                    fg = self._in_background_space(fg, primary, values["background"][0])
                    dtype = np.promote_types(fg.dtype, back.dtype)
                    fg, background = _promote(fg, dtype), _promote(back, dtype)
                    if self.placement is not None:
                        # The mask keeps its dtype when only moved (uint8 from a video stays on apply's fast path).
                        fg, mask = place_foreground(
                            self.placement, fg, mask, background, max_pixels=self.max_pixels, foreground_name=name,
                            background_name=self.sources["background"].where(index),
                        )
                    composite = make_composite(fg, background, mask)
                    alpha = _over(mask_to_float(mask), back_alpha) if back_alpha is not None else None
                if mask.size and float(mask.min()) / _FULL.get(mask.dtype, 1.0) >= ALL_FOREGROUND:
                    raise InputMismatchError(
                        f"{mask_name}: the mask is foreground everywhere; harmonization needs some background to match against"
                    )
                carrier = primary if form == "composite" else values["background"][0]
                yield Frame(index, pts, composite, background, mask, alpha, name, getattr(carrier, "metadata", None))
                index += 1
        finally:
            for it in iterators.values():
                it.close()


def _count_message(a: Source, a_count: int, b: Source, b_count: int) -> str:
    return (
        f"{b.path} ({b.role}) has {b_count} frames but {a.path} ({a.role}) has {a_count}; "
        "every clip input needs the same number of frames"
    )


def _turned_hint(a: Source, b: Source) -> str:
    """When two sizes differ by a quarter turn and one input is a video stored turned: why, and what to do."""
    turned = [v for v in (a, b) if isinstance(v, VideoSource) and v.info.orientation.swaps_sides]
    if turned and a.size == b.size[::-1]:
        # A phone clip is read the way players show it; a mask drawn on its stored frames is sideways.
        return (f" ({turned[0].path} is stored turned a quarter and read upright, as players show it: "
                "draw masks and foregrounds on the upright picture)")
    return ""


def _rgb_of(value) -> np.ndarray:
    return value.rgb if hasattr(value, "rgb") else value


def _split(value) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb, alpha) of a LoadedImage or a decoded RGB/RGBA array."""
    if hasattr(value, "rgb"):
        return value.rgb, value.alpha
    if value.ndim == 3 and value.shape[2] == 4:
        return np.ascontiguousarray(value[..., :3]), np.ascontiguousarray(value[..., 3])
    return value, None
