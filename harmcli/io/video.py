"""Video files through PyAV (FFmpeg inside the ``av`` wheel): the only module that imports ``av``.

What the rest of harmcli sees: :func:`is_video` (by extension, no PyAV needed), :func:`is_video_input` (also
by the container, for extensions harmcli does not write such as .mts or .mxf), :func:`probe`,
:class:`VideoReader` (frames as RGB / RGBA arrays, uint8 or uint16 by the source's bit depth, or gray uint8
masks, with their timestamps) and :class:`VideoWriter` (RGB or RGBA frames in, an encoded file out, the audio of
another file copied in).

Why it is built this way:

* **Timestamps, not frame numbers.** Output frames carry the input frame's ``pts`` in the input stream's time
  base, so the frame rate (a rational such as 24000/1001) and any variable timing survive; the container may
  pick its own time base, and FFmpeg rescales. Times that Matroska/WebM rounded to the millisecond are put back
  on the frame-rate grid (:class:`_Timeline`), so a .mkv at 24000/1001 gives an .mp4 at 24000/1001. A source's
  start timecode (``timecode`` tag, QuickTime's tmcd track) is carried.
* **Audio is remuxed, not re-encoded**: the packets of every audio track are copied into the output in time
  order, interleaved with the video as it is written, so nothing is decoded and nothing is lost (each track keeps
  its language and title). When the output container cannot hold that audio codec (PCM in .mp4, AAC in .webm) it
  is re-encoded once (AAC, or Opus for .webm) and the writer says so. Subtitle and data tracks (telemetry,
  timed metadata) are not copied (the run says so).
* **Colour**: YUV frames are converted to RGB with the matrix and range the file is tagged with (BT.601,
  limited range when untagged, as FFmpeg does), and the output is converted back with the same matrix and
  tagged the same, with accurate rounding (swscale's default flags darken by about one code value per round
  trip), so an untouched background keeps its colour through a lossy round trip. The source's primaries and
  transfer (BT.709, BT.2020 with PQ or HLG) are tagged on every output, on the stream and on each frame (ProRes
  takes them from the frames), the lossless RGB codecs included. An HDR10 source's static metadata (mastering
  display, MaxCLL and MaxFALL: :class:`HdrMetadata`, read from its first frame) goes into HEVC outputs as x265's
  SEI; the other encoders here have no way in for it through PyAV, and the writer says it was dropped.
* **Codecs** (``CODECS``): H.264 (default for .mp4/.mov/.mkv), HEVC, VP9 (.webm), and lossless masters:
  FFV1 in .mkv (RGB, bit-exact), H.264 RGB at qp 0 (``h264rgb``, bit-exact, plays in more tools), PNG-in-MOV;
  and ProRes for editing (4444, or a ProRes source's own profile). Without ``--codec`` the source's codec is
  kept where the container holds it (``FOLLOWED_CODECS``), else the container's default is used.
* **Alpha is kept where the codec holds it** (``Codec.alpha_pix_fmt``), straight as frame files hold it (no
  FFmpeg decoder here premultiplies): PNG (``rgba``/``rgba64be``) and FFV1 (``bgra``/``gbrap16le``) bit-exact
  at 8 and 16 bits; ProRes 4444 at 10 bits (``yuva444p10le``, the only alpha format prores_ks takes; rounded
  here, as swscale truncates by up to 1.5 steps); VP9 (``yuva420p``, lossy like the picture; browsers show it,
  many other tools ignore it). H.264, HEVC and h264rgb drop it and the writer says which ``--codec`` keeps it.
  FFmpeg's own VP9 decoder ignores the alpha WebM carries beside each frame, so such a stream is decoded with
  libvpx's.
* **Bit depth follows the source.** A 10/12-bit source (HEVC Main 10, ProRes, 10-bit H.264, FFV1) is read as
  uint16 RGB and written back with more than 8 bits where the codec has them (``Codec.deep_pix_fmt``: 10-bit
  4:2:0 for H.264 and HEVC, as FFmpeg picks for such input; 16-bit RGB for FFV1 and PNG; ProRes is 10-bit
  anyway); VP9 and lossless H.264 RGB here are 8-bit only, and the writer says so. 8-bit sources are read and
  written exactly as before. Masks stay 8-bit.
* **Frames come upright.** Phones store a portrait clip as landscape frames plus a display matrix that says
  "turn this a quarter"; the reader applies it (as the ``ffmpeg`` command does by default), so masks and
  foregrounds line up with the picture people see, and the output is written upright, with no matrix.
* **Container metadata is carried** (creation time, location, title, ...): what the output format has a place
  for; the muxer's own tags (brands, encoder) are its own.
* **Decoding uses FFmpeg's frame threads** (``thread_type = AUTO``): several frames decode at once, which
  the two-pass video loop needs since it decodes every input twice.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Iterator

import cv2
import numpy as np

from harmcli.errors import HarmcliError, ImageReadError, ImageWriteError, UsageError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


@dataclass(frozen=True)
class Codec:
    """An output codec choice: the FFmpeg encoder, its pixel format, the containers that hold it."""

    name: str
    encoder: str
    pix_fmt: str
    containers: tuple[str, ...]
    lossless: bool
    default_crf: int | None = None  # None: --crf does not apply
    options: tuple[tuple[str, str], ...] = ()
    note: str = ""
    deep_pix_fmt: str | None = None  # the pixel format for a source of more than 8 bits; None: 8 bits only
    deep_note: str = ""  # said when a deep source is written with it
    alpha_pix_fmt: str | None = None  # the pixel format for frames with an alpha channel; None: holds no alpha
    deep_alpha_pix_fmt: str | None = None  # the same for a deep source; None: the alpha format's depth only
    alpha_options: tuple[tuple[str, str], ...] = ()  # encoder options that replace ``options``' with alpha frames
    alpha_note: str = ""  # said when they do
    title: str = ""  # what the run's summary calls it (ProRes: with its profile); empty: ``name``

    @property
    def label(self) -> str:
        return self.title or self.name


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("h264", "libx264", "yuv420p", (".mp4", ".m4v", ".mov", ".mkv"), False, 18, (("preset", "medium"),),
              "H.264 4:2:0, plays everywhere", "yuv420p10le",
              "10-bit H.264 (High 10) does not play in browsers or QuickTime; --codec hevc keeps 10 bits and plays "
              "more widely"),
        Codec("hevc", "libx265", "yuv420p", (".mp4", ".m4v", ".mov", ".mkv"), False, 22,
              (("preset", "medium"), ("x265-params", "log-level=error")), "H.265 4:2:0, smaller files", "yuv420p10le"),
        Codec("vp9", "libvpx-vp9", "yuv420p", (".webm", ".mkv"), False, 32, (("b", "0"), ("row-mt", "1")),
              "VP9 4:2:0, for the web", alpha_pix_fmt="yuva420p"),
        Codec("ffv1", "ffv1", "bgr0", (".mkv", ".avi"), True, None, (("level", "3"),),
              "lossless RGB master (bit-exact)", "gbrp16le", alpha_pix_fmt="bgra", deep_alpha_pix_fmt="gbrap16le"),
        Codec("h264rgb", "libx264rgb", "rgb24", (".mp4", ".mov", ".mkv"), True, None,
              (("qp", "0"), ("preset", "veryfast")), "lossless RGB H.264 (bit-exact)"),
        Codec("png", "png", "rgb24", (".mov",), True, None, (), "lossless PNG frames in a MOV", "rgb48be",
              alpha_pix_fmt="rgba", deep_alpha_pix_fmt="rgba64be"),
        # prores_ks takes alpha only as 10 bits, although ProRes 4444 stores up to 16.
        Codec("prores", "prores_ks", "yuv444p10le", (".mov", ".mkv"), False, None, (("profile", "4444"),),
              "ProRes 4444, for editing", "yuv444p10le", alpha_pix_fmt="yuva444p10le",
              deep_alpha_pix_fmt="yuva444p10le"),
    )
}
# ProRes profiles as FFmpeg's decoder names them -> prores_ks's profile option and the name people know.
_PRORES_PROFILES = {
    "Proxy": ("proxy", "422 Proxy"), "LT": ("lt", "422 LT"), "Standard": ("standard", "422"), "HQ": ("hq", "422 HQ"),
    "4444": ("4444", "4444"), "XQ": ("4444xq", "4444 XQ"),
}
# Without --codec a clip is written with its source's codec where the output container holds it: an iPhone's HEVC
# stays HEVC (10 bits that QuickTime plays, where 10-bit H.264 does not), an editor's ProRes stays ProRes of the
# same profile, a lossless FFV1 or PNG master stays lossless. Other sources (MPEG-2, DNxHD, MJPEG ...) get the
# container's default.
FOLLOWED_CODECS = ("h264", "hevc", "vp9", "ffv1", "png", "prores")


def prores_codec(profile: str | None) -> Codec:
    """ProRes of a source's ``profile`` (FFmpeg's name: Proxy, LT, Standard, HQ, 4444, XQ); 4444 when unknown. The
    422 profiles store 4:2:2 and no alpha, so frames with alpha are written as 4444 (the writer says so)."""
    option, label = _PRORES_PROFILES.get(profile or "", ("4444", "4444"))
    base = CODECS["prores"]
    if option.startswith("4444"):
        return replace(base, options=(("profile", option),), note=f"ProRes {label}, for editing", title=f"ProRes {label}")
    return replace(base, pix_fmt="yuv422p10le", deep_pix_fmt="yuv422p10le", options=(("profile", option),),
                   note=f"ProRes {label}, for editing", title=f"ProRes {label}", alpha_options=(("profile", "4444"),),
                   alpha_note=f"ProRes {label} holds no alpha channel: the frames' alpha made it ProRes 4444")


def source_codec(source: "VideoInfo", ext: str) -> Codec | None:
    """The codec a clip from ``source`` is written with into an ``ext`` file when no --codec is given (see
    ``FOLLOWED_CODECS``); None: the container's default."""
    if source.codec not in FOLLOWED_CODECS or ext not in CODECS[source.codec].containers:
        return None
    return prores_codec(source.profile) if source.codec == "prores" else CODECS[source.codec]


# The codecs that hold alpha, in the order a note suggests them.
ALPHA_CODECS = ("prores", "png", "ffv1", "vp9")
DEFAULT_CODEC = {".mp4": "h264", ".m4v": "h264", ".mov": "h264", ".mkv": "h264", ".webm": "vp9", ".avi": "ffv1"}
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


def is_video(path: str | Path) -> bool:
    """True for a video file we can write, by its extension (no file access, no PyAV)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


# Files FFmpeg opens as video that people mean as pictures: a GIF (256 colours, mostly a still or a small
# animation) went down the clip path and a still one was refused with "a clip goes to a video file"; as an image
# it gets the image reader's one line naming the formats it reads.
NOT_CLIPS = (".gif",)


def is_video_input(path: str | Path, image_extensions: tuple[str, ...] = ()) -> bool:
    """True for a video to read: a video extension, or (any other file that is not an image by its extension,
    e.g. .mts, .mxf, .ts) a container in which FFmpeg finds a video stream."""
    path = Path(path)
    if is_video(path):
        return True
    if path.suffix.lower() in image_extensions or path.suffix.lower() in NOT_CLIPS or not path.is_file():
        return False
    av = _av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return bool(container.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return False


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - av is a default dependency
        raise HarmcliError("video needs PyAV: pip install av") from None
    # FFmpeg's own log lines would break "one line per problem": every failure reaches the user as an exception.
    # None, not a level: with any level PyAV's log callback takes the GIL for every FFmpeg error line, and a
    # decoder's frame thread that logs while Python closes that decoder (holding the GIL, waiting for the thread)
    # hangs the run for good (seen when an output failed to open mid-clip: Ctrl-C and kill -TERM did not end it).
    av.logging.set_level(None)
    return av


def choose_codec(output: Path, codec: str | None, crf: int | None, source: "VideoInfo | None" = None) -> tuple[Codec, int | None]:
    """The codec for ``output`` and the CRF to use: ``--codec``, else the ``source`` video's own codec where the
    container holds it (:func:`source_codec`), else the container's default. ProRes keeps a ProRes source's
    profile. Usage errors name the option."""
    ext = output.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise UsageError(f"{output}: not a video extension ({', '.join(VIDEO_EXTENSIONS)})")
    followed = source_codec(source, ext) if codec is None and source is not None else None
    name = followed.name if followed is not None else (codec or DEFAULT_CODEC[ext]).lower()
    if name not in CODECS:
        raise UsageError(f"--codec must be one of {', '.join(CODECS)}, not '{codec}'")
    chosen = followed or CODECS[name]
    if name == "prores" and source is not None and source.codec == "prores":
        chosen = prores_codec(source.profile)
    if ext not in chosen.containers:
        raise UsageError(f"{output}: {name} cannot go in a {ext} file; use {' or '.join(chosen.containers)}")
    if crf is not None:
        if chosen.default_crf is None:
            if followed is not None:
                raise UsageError(f"--crf does not apply to {name}, the source's codec ({chosen.note}); give --codec too "
                                 f"(h264, hevc{', vp9' if ext in CODECS['vp9'].containers else ''})")
            raise UsageError(f"--crf does not apply to --codec {name} ({chosen.note})")
        top = 63 if name == "vp9" else 51
        if not 0 <= crf <= top:
            raise UsageError(f"--crf must be between 0 and {top} for {name}, got {crf}")
    return chosen, (crf if crf is not None else chosen.default_crf)


def alpha_dropped_note(codec: Codec, output: Path) -> str:
    """What the run says when frames with alpha go to a codec that holds none: which ``--codec`` keeps it."""
    ext = Path(output).suffix.lower()
    here = [name for name in ALPHA_CODECS if ext in CODECS[name].containers]
    if here:
        names = ", ".join(here[:-1]) + " or " + here[-1] if len(here) > 1 else here[0]
        return f"the frames' alpha channel was dropped: {codec.name} cannot store it (--codec {names} keeps it)"
    return (f"the frames' alpha channel was dropped: {ext} files hold none here (write a .mov with --codec prores or "
            "png, an .mkv with ffv1, or a .webm)")


def check_frame_size(codec: Codec, width: int, height: int, output: Path) -> None:
    """4:2:0 codecs store colour at half resolution and need even sides; a usage error says what to use."""
    if codec.pix_fmt.startswith("yuv420") and (width % 2 or height % 2):
        raise UsageError(
            f"{output}: {width}x{height} has an odd side, which {codec.name} (4:2:0) cannot encode; "
            "use --codec ffv1 (.mkv) or --codec h264rgb"
        )


# --------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Orientation:
    """How a stored frame is turned to be shown: ``quarter_turns`` counter-clockwise (``np.rot90``'s ``k``),
    then mirrored left-right when ``mirrored``. Every display matrix made of quarter turns and flips is one of
    these eight (a vertical flip is a half turn and a mirror)."""

    quarter_turns: int = 0
    mirrored: bool = False

    @property
    def upright(self) -> bool:
        return self.quarter_turns == 0 and not self.mirrored

    @property
    def swaps_sides(self) -> bool:
        return self.quarter_turns % 2 == 1

    def apply(self, frame: np.ndarray) -> np.ndarray:
        if self.upright:
            return frame
        turned = np.rot90(frame, self.quarter_turns)
        return np.ascontiguousarray(turned[:, ::-1] if self.mirrored else turned)

    @classmethod
    def from_display_matrix(cls, matrix) -> "Orientation":
        """From FFmpeg's 3x3 display matrix (nine int32, 16.16 fixed point, row-major). Its top-left 2x2 is a
        rotation, with its first column negated when the picture is mirrored (a negative determinant); angles
        between quarter turns are rounded to the nearest one."""
        a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
        mirrored = a * d - b * c < 0
        if mirrored:
            a, c = -a, -c
        if a == 0 and c == 0:
            return cls()
        turns = round(math.degrees(math.atan2(c, a)) / 90) % 4
        return cls(turns, mirrored)


def _orientation(frame) -> Orientation:
    av = _av()
    for side_data in frame.side_data:
        if side_data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            return Orientation.from_display_matrix(np.frombuffer(bytes(side_data), np.int32)[:9])
    return Orientation()


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's first video stream says about itself."""

    path: Path
    width: int
    height: int
    rate: Fraction  # frames per second, exact (24000/1001)
    time_base: Fraction
    frames: int | None  # as the container counts them; None when it does not say (Matroska, WebM)
    has_alpha: bool
    has_audio: bool
    codec: str
    orientation: Orientation = Orientation()  # width and height above are as shown, after it
    profile: str | None = None  # the codec's profile as FFmpeg names it (ProRes: Proxy, LT, Standard, HQ, 4444, XQ)
    duration: Fraction | None = None  # seconds the file states for the video (see _stated_duration); None: unknown

    @property
    def size_text(self) -> str:
        return f"{self.width}x{self.height}"


def _open(path: Path):
    av = _av()
    if path.is_dir():
        raise ImageReadError(f"cannot read video '{path}': it is a folder, not a file")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except FileNotFoundError:
        raise ImageReadError(f"cannot read video '{path}': the file does not exist") from None
    except av.EOFError:
        raise ImageReadError(
            f"cannot read video '{path}': the file ends before its first frame (empty or cut short)"
        ) from None
    except av.InvalidDataError:
        # FFmpeg's "Invalid data found when processing input": no container it knows, or one it cannot parse (an
        # .mp4 whose recording stopped before its index was written reads so, or as no streams at all).
        raise ImageReadError(
            f"cannot read video '{path}': no video FFmpeg can read (damaged, cut short, or not a video)"
        ) from None
    except av.FFmpegError as exc:
        raise ImageReadError(f"cannot read video '{path}': {_reason(exc)}") from None
    if not container.streams:
        # What FFmpeg makes of an .mp4 whose recording stopped before its index was written, or of one with no frames.
        container.close()
        raise ImageReadError(f"cannot read video '{path}': no streams found (the file is empty, cut short or damaged)")
    if not container.streams.video:
        container.close()
        raise ImageReadError(f"cannot read video '{path}': it has no video stream")
    return container


def _has_alpha(video_format) -> bool:
    return any(component.is_alpha for component in video_format.components)


def _alpha_decoder(stream):
    """A decoder for a VP9 stream whose alpha rides beside each frame (Matroska BlockAdditional, the track tagged
    ``alpha_mode=1``): FFmpeg's own VP9 decoder ignores that alpha, libvpx's reads it. None for every other
    stream (decoded as usual), or where this FFmpeg has no libvpx."""
    if stream.codec_context.name != "vp9" or stream.metadata.get("alpha_mode") != "1":
        return None
    av = _av()
    try:
        decoder = av.codec.CodecContext.create("libvpx-vp9", "r")
    except (av.FFmpegError, ValueError):
        return None
    # A context made by hand decodes on one thread unless told (the stream's thread_type does not reach it);
    # libvpx splits a frame over tile columns.
    decoder.thread_count = min(8, os.cpu_count() or 1)
    return decoder


def _decoded(container, stream, decoder) -> Iterator:
    if decoder is None:
        yield from container.decode(stream)
        return
    for packet in container.demux(stream):  # the last, empty packet flushes the decoder
        yield from decoder.decode(packet)


def _exact(deep: bool = False):
    """swscale flags for RGB <-> YUV: its default flags darken YUV -> RGB by about one code value (measured);
    accurate rounding with full-resolution chroma interpolation converts without bias (bilinear: 20 ms for a
    1080p frame, half the time of bicubic for ~0.1 code value more error). ``deep``: decoding into 16-bit RGB,
    where bilinear with full chroma interpolation gives wrong colours (FFmpeg in av 18: a 4:2:0 10-bit frame came
    back with its mean off by a third of the range) and bicubic converts a 10-bit round trip within 1/1000."""
    from av.video.reformatter import Interpolation

    first = Interpolation.BICUBIC if deep else Interpolation.BILINEAR
    return first | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


# 8-bit YUV layouts whose first plane is the luma; untagged (2) and the two BT.601 tags (BT.470BG, SMPTE 170M).
_YUV8 = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "yuv440p")
_BT601 = (2, 5, 6)
_LIMITED_TO_FULL = np.clip(np.rint((np.arange(256) - 16) * (255.0 / 219.0)), 0, 255).astype(np.uint8)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if ":" in text else text.strip()


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header (no frames decoded). Raises ImageReadError naming the file."""
    path = Path(path)
    av = _av()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or not ctx.width:
            raise ImageReadError(f"cannot read video '{path}': no frame size or frame rate in the file")
        has_alpha = (ctx.format is not None and _has_alpha(ctx.format)) or _alpha_decoder(stream) is not None
        # The display matrix reaches us on decoded frames only (PyAV shows no stream side data): decode one.
        orientation = Orientation()
        with contextlib.suppress(av.FFmpegError, StopIteration):
            orientation = _orientation(next(container.decode(stream)))
        width, height = (ctx.height, ctx.width) if orientation.swaps_sides else (ctx.width, ctx.height)
        return VideoInfo(
            path=path, width=width, height=height, rate=Fraction(rate), time_base=Fraction(stream.time_base),
            frames=stream.frames or None, has_alpha=bool(has_alpha), has_audio=bool(container.streams.audio),
            codec=ctx.name, orientation=orientation, duration=_stated_duration(container, stream), profile=ctx.profile,
        )
    finally:
        container.close()


def _stated_duration(container, stream) -> Fraction | None:
    """How long the file says its video lasts, in seconds: the stream's own duration, else the track's ``DURATION``
    tag (what FFmpeg and mkvmerge write in Matroska/WebM, which state no frame count), else the container's when
    the video is its only stream (with audio the longest track sets it, and AAC runs past the picture). Matroska
    writes these in its header, so a file cut short still states its whole length. None when nothing says."""
    av = _av()
    if stream.duration and stream.time_base:
        return stream.duration * Fraction(stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.strip().split(":")
            return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except ValueError:
            pass
    if container.duration and len(container.streams) == 1:
        return Fraction(container.duration, av.time_base)
    return None


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10's static metadata, as a source's frames carry it: the display it was graded on (SMPTE ST 2086) and its
    brightest pixel and frame (CTA-861.3). HDR televisions tone-map by them; without them they guess."""

    # R x, R y, G x, G y, B x, B y, white x, white y (CIE 1931 xy), then min and max luminance (cd/m2)
    mastering: tuple[float, ...] | None = None
    light_level: tuple[int, int] | None = None  # MaxCLL, MaxFALL (cd/m2)

    def x265_params(self) -> list[str]:
        """The same for x265 (chromaticities in 1/50000, luminance in 1/10000 cd/m2, primaries in G, B, R order)."""
        params = []
        if self.mastering is not None:
            rx, ry, gx, gy, bx, by, wx, wy, low, high = self.mastering
            xy = [round(v * 50000) for v in (gx, gy, bx, by, rx, ry, wx, wy)]
            params.append("master-display=G({},{})B({},{})R({},{})WP({},{})".format(*xy)
                          + f"L({round(high * 10000)},{round(low * 10000)})")
        if self.light_level is not None:
            params.append("max-cll={},{}".format(*self.light_level))
        return params


def _hdr_metadata(frame) -> HdrMetadata | None:
    """The HDR10 metadata on a decoded frame (FFmpeg's AVMasteringDisplayMetadata: ten rationals, then
    has_primaries and has_luminance; AVContentLightMetadata: two unsigned ints); None when it has none."""
    mastering = light = None
    for side in frame.side_data:
        data = bytes(side)
        if side.type.name == "MASTERING_DISPLAY_METADATA" and len(data) >= 88:
            values = struct.unpack_from("=22i", data)
            rationals, has_primaries, has_luminance = values[:20], values[20], values[21]
            if has_primaries and has_luminance and all(rationals[1::2]):
                mastering = tuple(n / d for n, d in zip(rationals[0::2], rationals[1::2]))
        elif side.type.name == "CONTENT_LIGHT_LEVEL" and len(data) >= 8:
            light = struct.unpack_from("=2I", data)
    return HdrMetadata(mastering, light) if mastering is not None or light is not None else None


@dataclass(frozen=True)
class ColorInfo:
    """How a YUV stream maps to RGB; copied onto the output so that both directions use the same matrix."""

    colorspace: int = 2  # FFmpeg's AVCOL_SPC_*: 2 = unspecified (swscale then uses BT.601)
    color_range: int = 0  # 0 unspecified (limited), 1 limited/MPEG, 2 full/JPEG
    primaries: int = 2
    trc: int = 2
    hdr: HdrMetadata | None = None


def _bits(video_format) -> int:
    return max((component.bits for component in video_format.components), default=8)


class VideoReader:
    """Decode a video's frames in order.

    ``mode``: ``rgb`` (H, W, 3), ``rgba`` (H, W, 4) or ``gray`` (H, W) (a mask video: its luma, or its alpha
    when it has one). RGB and RGBA frames are uint16 (0..65535) when the source has more than 8 bits per
    channel, uint8 otherwise; gray is always uint8. Frames are turned as the file's display matrix says (see
    :class:`Orientation`). Iterating yields ``(array, pts)``; :attr:`color` is the first frame's colour tagging.
    """

    def __init__(self, path: str | Path, mode: str = "rgb", info: VideoInfo | None = None):
        """``info``: the file's :func:`probe`, when the caller has it (probing decodes the first frame)."""
        self.path = Path(path)
        self.info = info if info is not None else probe(self.path)
        self.mode = mode
        self.color = ColorInfo()
        self._container = None

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        av = _av()
        container = self._container = _open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = 0
            for frame in _decoded(container, stream, _alpha_decoder(stream)):
                if not decoded:
                    self.color = ColorInfo(int(frame.colorspace), int(frame.color_range), int(frame.color_primaries),
                                           int(frame.color_trc), _hdr_metadata(frame))
                decoded += 1
                yield self.info.orientation.apply(self._convert(frame)), frame.pts
        except av.InvalidDataError:
            raise ImageReadError(f"cannot read video '{self.path}': invalid data after {decoded} frames (damaged or "
                                 "cut short)") from None
        except av.FFmpegError as exc:
            raise ImageReadError(f"cannot read video '{self.path}': {_reason(exc)}") from None
        finally:
            self.close()

    def _convert(self, frame) -> np.ndarray:
        fmt = frame.format.name
        if self.mode == "gray" and _has_alpha(frame.format):
            return np.ascontiguousarray(frame.to_ndarray(format="rgba")[..., 3])
        deep = self.mode != "gray" and _bits(frame.format) > 8  # keep the source's extra bits
        formats = {"rgb": "rgb48le", "rgba": "rgba64le"} if deep else {"rgb": "rgb24", "rgba": "rgba", "gray": "gray"}
        target = formats[self.mode]
        if fmt == target:
            return frame.to_ndarray()
        full_range = int(frame.color_range) == 2 or fmt.startswith("yuvj")
        if self.mode == "gray" and fmt in _YUV8:
            # A mask is the luma plane: no chroma to convert; limited range (16..235) is stretched to 0..255.
            luma = np.frombuffer(frame.planes[0], np.uint8).reshape(frame.height, -1)[:, : frame.width]
            return np.ascontiguousarray(luma) if full_range else _LIMITED_TO_FULL[luma]
        if (self.mode == "rgb" and fmt == "yuv420p" and not full_range and int(frame.colorspace) in _BT601
                and frame.width % 2 == 0 and frame.height % 2 == 0):
            # OpenCV's BT.601 limited-range conversion: unbiased, within ~1 code value of swscale's most accurate
            # mode, and 6x faster than it on a 1080p frame (3 ms against 20).
            return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
        # Anything else through swscale, with the file's own matrix and range (None = what the frame says).
        src_range = frame.color_range if int(frame.color_range) in (1, 2) else None
        converted = frame.reformat(
            format=target, src_color_range=src_range, dst_color_range=2 if src_range else None,
            interpolation=_exact(deep),
        )
        return converted.to_ndarray()

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None


# Tags a muxer writes for itself (brands, the writing library); copying them would claim the wrong file type or
# tool. "-eng" and other language-suffixed duplicates are FFmpeg's reading of a tag it also gives plainly.
_MUXER_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder", "software", "handler_name")


def container_tags(path: str | Path) -> dict[str, str]:
    """A video file's own metadata (title, creation time, location, comment, ...), without what the muxer writes;
    for an output to carry (formats keep what they have a place for). Empty when the file cannot be read."""
    av = _av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            tags = dict(container.metadata)
    except (av.FFmpegError, OSError):
        return {}
    return {
        key: value for key, value in tags.items()
        if key.lower() not in _MUXER_TAGS and not (len(key) > 4 and key[-4] == "-" and key[:-4] in tags)
    }


def source_timecode(path: str | Path) -> str | None:
    """A video's start timecode (``01:00:00:00``, ``;`` before the frames for drop-frame), as FFmpeg reads it: the
    container's or a stream's ``timecode`` tag (QuickTime's tmcd track shows as one). None when it has none or the
    file cannot be read."""
    av = _av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            for tags in (container.metadata, *(s.metadata for s in container.streams)):
                value = tags.get("timecode") or tags.get("TIMECODE")
                if value:
                    return value
    except (av.FFmpegError, OSError):
        return None
    return None


def subtitle_streams(path: str | Path) -> int:
    """How many subtitle streams a video holds (0 when it cannot be read)."""
    av = _av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return len(container.streams.subtitles)
    except (av.FFmpegError, OSError):
        return 0


def data_streams(path: str | Path) -> list[str]:
    """What each track of a video that is neither picture, sound nor subtitles holds (GoPro telemetry, a phone's
    timed metadata, an attachment): its codec's name and the file's handler name for it, where given. A timecode
    track (QuickTime's tmcd) is left out: its timecode is carried. Empty when the file cannot be read."""
    av = _av()
    found = []
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            for stream in container.streams:
                if stream.type in ("video", "audio", "subtitle") or stream.metadata.get("timecode"):
                    continue
                handler = stream.metadata.get("handler_name")
                name = " ".join(part for part in (stream.name, repr(handler) if handler else None) if part)
                found.append(name or "unknown")
    except (av.FFmpegError, OSError):
        return []
    return found


# --------------------------------------------------------------------------------------------------- writing


class VideoWriter:
    """Encode RGB frames (uint8, or uint16 for a source of more than 8 bits), with or without an alpha channel,
    into ``fh`` (an open binary file: see ``harmcli.io.images.atomic_write``).

    ``deep``: the frames come from a source of more than 8 bits per channel; the codec's ``deep_pix_fmt`` is used
    where it has one (otherwise 8 bits, and :attr:`notes` says so).

    ``alpha``: the frames carry an alpha channel (straight, not premultiplied, as frame files hold it); it is
    written with the codec's ``alpha_pix_fmt`` (``deep_alpha_pix_fmt`` for a deep source) where it has one, and
    dropped with a note where it has none (:attr:`alpha` says which). Decided once for the clip: a frame without
    alpha in a clip written with it is written opaque.

    Frames keep the pts they are given, in ``time_base`` (put back on the frame-rate grid where the source
    rounded them: :class:`_Timeline`); ``audio_from`` names a file whose audio streams are copied in (re-encoded
    only when the container cannot hold them); ``tags``, the container's metadata (see :func:`container_tags`);
    ``timecode``, the start timecode (``HH:MM:SS:FF``, see :func:`source_timecode`). Use as a context manager or call
    :meth:`close`; an exception inside the ``with`` abandons the file (the caller removes it).
    """

    def __init__(
        self,
        fh: BinaryIO,
        output: Path,
        *,
        width: int,
        height: int,
        rate: Fraction,
        time_base: Fraction,
        codec: Codec,
        crf: int | None,
        color: ColorInfo = ColorInfo(),
        audio_from: Path | None = None,
        threads: int = 0,
        deep: bool = False,
        alpha: bool = False,
        tags: dict[str, str] | None = None,
        timecode: str | None = None,
    ):
        av = _av()
        self.output = Path(output)
        self.codec = codec
        self.notes: list[str] = []
        check_frame_size(codec, width, height, output)
        self.alpha = alpha and codec.alpha_pix_fmt is not None
        if alpha and not self.alpha:
            self.notes.append(alpha_dropped_note(codec, self.output))
        if self.alpha:
            plain, deep_fmt = codec.alpha_pix_fmt, codec.deep_alpha_pix_fmt
        else:
            plain, deep_fmt = codec.pix_fmt, codec.deep_pix_fmt
        self.pix_fmt = deep_fmt if deep and deep_fmt else plain
        self.deep = _bits(av.VideoFormat(self.pix_fmt)) > 8
        self._alpha_asked, self._late_alpha_noted = alpha, False
        if deep and deep_fmt is None:
            self.notes.append(f"{codec.name} is 8 bits per channel here: the source's extra bits are rounded away "
                              "(--codec hevc, prores or ffv1 keep them)")
        elif deep and codec.deep_note and self.pix_fmt != plain:
            self.notes.append(codec.deep_note)
        fmt = _FORMATS[self.output.suffix.lower()]
        options = {}
        if fmt in ("mp4", "mov") and any("." in key for key in (tags or {})):
            # Apple's keys (com.apple.quicktime.location.ISO6709, .make, .creationdate) exist only in the
            # QuickTime "mdta" form; without this flag FFmpeg's muxer silently leaves them out.
            options["movflags"] = "use_metadata_tags"
        self.container = av.open(fh, "w", format=fmt, options=options, metadata_errors="replace")
        self.container.metadata.update(tags or {})
        stream = self.container.add_stream(codec.encoder, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        # The stream counts in a time base that holds both the source's ticks and the frame grid (see _Timeline).
        self._timeline = _Timeline(rate, time_base, grid_only=fmt == "avi")
        stream.time_base = self._timeline.time_base
        stream.codec_context.time_base = self._timeline.time_base
        stream.thread_count = threads
        if timecode:
            # The muxer writes it where the format keeps one: a tmcd track in .mov/.mp4, a tag in .mkv.
            stream.metadata["timecode"] = timecode
        options = dict(codec.options)
        if color.hdr is not None:
            if codec.encoder == "libx265":  # x265 writes them as SEI messages, where players look
                options["x265-params"] = ":".join([options.get("x265-params", "log-level=error"), *color.hdr.x265_params()])
            else:
                self.notes.append(f"the source's HDR10 metadata (mastering display, light levels) is not carried by "
                                  f"{codec.name} (--codec hevc keeps it)")
        if self.alpha and codec.alpha_options:
            options.update(codec.alpha_options)
            self.notes.append(codec.alpha_note)
        if crf is not None:
            options["crf"] = str(crf)
        stream.options = options
        if codec.encoder == "libx265" and fmt in ("mp4", "mov"):
            # FFmpeg tags HEVC in MP4/MOV as 'hev1' (parameter sets in the stream), which QuickTime, iOS and
            # Final Cut refuse to play; 'hvc1' (parameter sets in the header, as iPhones write) plays everywhere.
            stream.codec_context.codec_tag = "hvc1"
        self.yuv = self.pix_fmt.startswith("yuv")
        self.color = color
        ctx = stream.codec_context
        # The primaries and transfer (BT.709, BT.2020 with PQ or HLG, ...) are the source's whatever the output's
        # layout: the pixel values are still in them. Some encoders (prores_ks) take the tags from each frame,
        # others (libx264, libx265, libvpx) from the stream: both get them.
        self._frame_tags = {"color_primaries": color.primaries, "color_trc": color.trc}
        ctx.color_primaries, ctx.color_trc = color.primaries, color.trc
        if self.yuv:
            # An RGB source (PNG, FFV1 RGB) says "RGB matrix", which would tell players that this YUV output is GBR
            # (and libvpx refuses it): its frames are converted with BT.601, as an untagged file's, so untagged.
            ctx.colorspace = color.colorspace if color.colorspace != 0 else 2
            ctx.color_range = 1  # limited range: what every player assumes for these codecs
            self._frame_tags.update(colorspace=ctx.colorspace, color_range=1)
        self.stream = stream
        self.time_base = time_base
        # Every audio track (a camera's second microphone, a second language), in the source's order.
        self._audio = [
            _AudioCopy(self.container, audio_from, self.output, self.notes, index)
            for index in (_audio_streams(Path(audio_from), self.notes) if audio_from else [])
        ]

    def write(self, rgb: np.ndarray, pts: int, alpha: np.ndarray | None = None) -> None:
        """Encode one frame: ``rgb`` (H, W, 3) and, for a writer with :attr:`alpha`, ``alpha`` (H, W), uint8 or
        uint16 (its own depth need not be the frame's); None: opaque."""
        av = _av()
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype == np.uint16 and not self.deep:
            rgb = cv2.convertScaleAbs(rgb, alpha=1.0 / 257.0)  # rounds to the nearest 8-bit value
        if alpha is not None and not self._alpha_asked and not self._late_alpha_noted:
            self.notes.append(f"frames after the first carry an alpha channel but the first has none: {self.output} "
                              "is written without alpha")
            self._late_alpha_noted = True
        if self.alpha:
            if alpha is not None and np.shape(alpha) != rgb.shape[:2]:
                raise ImageWriteError(f"cannot write '{self.output}': alpha {np.shape(alpha)} does not match the frame "
                                      f"{rgb.shape[:2]}")
            alpha = _alpha_as(alpha, rgb.dtype, rgb.shape[:2])
        if self.pix_fmt == "yuv420p" and self.color.colorspace in _BT601:
            # BT.601 limited range, as swscale does it for untagged files, at a fraction of its time.
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        elif self.alpha and not self.yuv:
            # RGBA into the encoder's RGB-family layout (bgra, gbrap16le, rgba64be): a lossless reordering.
            rgba = np.dstack((rgb, alpha))
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba64le" if rgba.dtype == np.uint16 else "rgba")
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
        if self.yuv and frame.format.name != self.pix_fmt:
            # RGB -> YUV with the input's matrix (None = swscale's BT.601 for untagged files), limited range.
            space = self.color.colorspace if self.color.colorspace in (1, 4, 5, 6, 7, 9) else None
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace=space, dst_color_range=1, interpolation=_exact())
            if self.alpha:
                _put_alpha_plane(frame, alpha)
        for name, value in self._frame_tags.items():
            setattr(frame, name, value)
        frame.pts = self._timeline.pts(pts)
        frame.time_base = self._timeline.time_base
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            for audio in self._audio:
                audio.mux_until(pts * self.time_base)
        except av.FFmpegError as exc:
            raise ImageWriteError(f"cannot write '{self.output}': {_reason(exc)}") from None

    def close(self) -> None:
        av = _av()
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            for audio in self._audio:
                audio.mux_until(None)
            self.container.close()
        except av.FFmpegError as exc:
            raise ImageWriteError(f"cannot write '{self.output}': {_reason(exc)}") from None
        finally:
            for audio in self._audio:
                audio.close()

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()
        for audio in self._audio:
            audio.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


class _Timeline:
    """The output stream's time base and each frame's pts in it, from the source's ``pts`` in ``time_base``.

    Matroska and WebM count time in milliseconds, so a 24000/1001 clip's frames sit at 0, 42, 83, 125 ms: rounded
    off a grid of 41.71 ms. Copied as they are into a .mp4 or .mov, whose time base can be exact, they would give a
    file that says 23.98 (128000/5337) frames per second with frames 41 and 42 ms apart, which an editor does not
    take as 24000/1001. So a frame within half a source tick of the frame-rate grid is put on the grid, in a time
    base that holds both (1/24000 here); a frame off the grid (variable frame rate) keeps its exact time. A source
    whose time base already holds the grid (.mp4, .mov, frame folders) is copied unchanged.

    ``grid_only``: the container has no timestamps, only a frame rate (AVI): every frame goes to its nearest grid
    point in a time base of 1/rate. (Given 1/12288, FFmpeg's AVI muxer picks 1/600 and the file says 600 frames per
    second, 49 of every 50 of them empty.)"""

    def __init__(self, rate: Fraction, time_base: Fraction, grid_only: bool = False):
        self.source = Fraction(time_base)
        self.rate = Fraction(rate) if rate else None
        self.time_base = self.source
        self.grid_only = grid_only and bool(self.rate)
        self._last: int | None = None
        if self.grid_only:
            self.time_base = 1 / self.rate
        elif self.rate and self.rate > 0:
            ticks = math.lcm(self.source.denominator, self.rate.numerator)
            # 32 bits: what an .mp4's timescale holds; beyond that the source's own time base is kept.
            if ticks != self.source.denominator and ticks < 2**31:
                self.time_base = Fraction(1, ticks)

    def pts(self, pts: int) -> int:
        if self.time_base == self.source:
            return pts
        t = pts * self.source
        on_grid = round(t * self.rate) / self.rate
        if self.grid_only:
            value = int(on_grid / self.time_base)
            if self._last is not None and value <= self._last:  # frames closer than a frame apart: the next slot
                value = self._last + 1
            self._last = value
            return value
        out = on_grid if abs(t - on_grid) <= self.source / 2 else t
        value = int(out / self.time_base)
        if self._last is not None and value <= self._last:  # two frames a tick apart by one grid point
            value = int(t / self.time_base)
        self._last = value
        return value


def _alpha_as(alpha: np.ndarray | None, dtype: np.dtype, shape: tuple[int, int]) -> np.ndarray:
    """``alpha`` at the frame's depth (x257 up, to nearest down, as images convert); None: opaque."""
    dtype = np.dtype(dtype)
    if alpha is None:
        return np.full(shape, np.iinfo(dtype).max, dtype)
    alpha = np.asarray(alpha)
    if alpha.dtype == dtype:
        return np.ascontiguousarray(alpha)
    if alpha.dtype == np.uint16:
        return cv2.convertScaleAbs(alpha, alpha=1.0 / 257.0)
    return alpha.astype(np.uint16) * np.uint16(257)


def _put_alpha_plane(frame, alpha: np.ndarray) -> None:
    """Write ``alpha`` (uint8 or uint16) into the alpha plane of a YUVA frame, rounded to its depth. swscale's
    own conversion is off by up to 1.5 steps from 16 to 10 bits (it truncates; measured), which ProRes keeps."""
    plane = frame.planes[3]
    bits = _bits(frame.format)
    top, source_top = (1 << bits) - 1, int(np.iinfo(alpha.dtype).max)
    if top == source_top:
        values = alpha
    else:
        values = (alpha.astype(np.uint32) * top + source_top // 2) // source_top
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    view = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, -1)[:, : plane.width]
    view[...] = values


# Containers and the audio codecs they hold without re-encoding (what FFmpeg's muxers accept).
_AUDIO_OK = {
    "mp4": ("aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"),
    "mov": ("aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_f32le"),
    "matroska": None,  # anything
    "webm": ("opus", "vorbis"),
    "avi": ("mp3", "ac3", "pcm_s16le", "pcm_u8"),
}


def _audio_streams(source: Path, notes: list[str]) -> list[int]:
    """The audio streams of ``source`` that can be copied: those whose codec FFmpeg knows (it can neither copy
    nor re-encode a track it cannot name, e.g. a newer camera's spatial audio); each other one is noted."""
    av = _av()
    with av.open(str(source), metadata_errors="replace") as container:
        streams = list(container.streams.audio)
        known = [i for i, s in enumerate(streams) if s.codec_context is not None and s.codec_context.name]
    for i in sorted(set(range(len(streams))) - set(known)):
        notes.append(f"audio track {i + 1} of {source} is in a codec FFmpeg does not know: it was not copied")
    return known


# Stream tags that say what an audio track is (a second language, "commentary", "lav mic"); kept on the copy.
_TRACK_TAGS = ("language", "title")


class _AudioCopy:
    """Copies audio stream ``index`` of ``source`` into ``container``, interleaved by time with the video (one
    copy per stream, each reading the file on its own)."""

    def __init__(self, container, source: Path, output: Path, notes: list[str], index: int = 0):
        av = _av()
        self.input = av.open(str(source), metadata_errors="replace")
        self.container = container
        stream = self.input.streams.audio[index]
        fmt = _FORMATS[output.suffix.lower()]
        allowed = _AUDIO_OK.get(fmt)
        self.transcode = allowed is not None and stream.codec_context.name not in allowed
        if self.transcode:
            target = "libopus" if fmt == "webm" else ("mp3" if fmt == "avi" else "aac")
            rate = stream.codec_context.sample_rate or 48000
            if target == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000
            self.out = container.add_stream(target, rate=rate)
            note = (f"the audio ({stream.codec_context.name}) cannot go in a {output.suffix} file as is; "
                    f"re-encoded it as {target}")
            if note not in notes:  # once for all the tracks that needed it
                notes.append(note)
            self.resampler = None
            self.packets = self._decoded(stream)
        else:
            self.out = container.add_stream_from_template(stream)
            self.packets = (p for p in self.input.demux(stream) if p.dts is not None)
        for key in _TRACK_TAGS:
            if stream.metadata.get(key):
                self.out.metadata[key] = stream.metadata[key]
        self.pending = next(self.packets, None)

    def _decoded(self, stream):
        for frame in self.input.decode(stream):
            frame.pts = None  # let the encoder number samples from 0
            for packet in self.out.encode(frame):
                yield packet
        for packet in self.out.encode(None):
            yield packet

    def mux_until(self, seconds: Fraction | None) -> None:
        """Mux every audio packet that starts before ``seconds`` (None: all that are left)."""
        while self.pending is not None:
            packet = self.pending
            if seconds is not None and packet.pts is not None and packet.time_base is not None:
                if packet.pts * packet.time_base > seconds:
                    return
            packet.stream = self.out
            self.container.mux(packet)
            self.pending = next(self.packets, None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.input.close()
