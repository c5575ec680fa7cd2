"""Harmonize a clip in two passes: predict every frame, smooth the adjustments over time, then apply and encode.

:func:`harmonize_clip` is the library side of ``harmcli harmonize`` for videos and ``--sequence`` folders.

* **Pass 1** decodes every input, shrinks each frame to the network's size on a reader thread while the network
  runs on batches of frames in the calling thread, and keeps only what smoothing needs: the curves, the shading
  gain map (spooled to a temporary file: 256 KB a frame at 256²), 64-pixel thumbnails of the composite and the
  mask, and a colour histogram of the background for scene cuts.
* **Smoothing** (:class:`harmcli.ops.temporal.SmoothedAdjustments`) is centred in time, so it needs the frames
  after the current one: that is why there are two passes. It costs milliseconds for a whole clip.
* **Pass 2** decodes the inputs again on a reader thread, applies each frame's smoothed adjustment at full
  resolution in the calling thread (apply has its own strip threads) and encodes on a writer thread. The cost
  of the two-pass design is the second decode of the inputs; it is timed (``ClipResult.second_decode_s``).

The output is written to a temporary file (or folder) beside the destination and renamed at the end, so an
interrupted or failed run leaves nothing behind. With ``--params`` (one fixed adjustment) there is nothing to
predict or smooth, and only pass 2 runs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from harmcli.batch import same_file
from harmcli.clip.sources import ClipInputs, Frame, FolderSource, VideoSource
from harmcli.errors import ImageWriteError, InputMismatchError, UsageError
from harmcli.io.video import Codec, check_frame_size, choose_codec, is_video
from harmcli.ops.adjustment import DEFAULT_POINTS, Adjustment

# Frames per network call in pass 1. On a GPU a batch amortises the launch overhead; on this 2-core CPU a batch
# of 4 was slower per frame than single frames (128 against 100 ms at 256², busy machine), so CPUs take one.
BATCH = {"cuda": 8, "cpu": 1}
# --temporal when not given: a quarter of a second of sigma.
DEFAULT_TEMPORAL = 0.5
# Seconds of the time kernel's sigma at --temporal 1: half a second damps jitter that a viewer sees as pumping
# while a change of light that takes a second or more is followed.
SIGMA_SECONDS_AT_FULL = 0.5
# Frame rate assumed for smoothing frame folders that have no rate (and no --fps).
SEQUENCE_RATE = Fraction(24)
QUEUE_FRAMES = 2

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class ClipOutput:
    """Where the clip goes: a video file (``codec``) or a folder of frames (``ext``)."""

    path: Path
    is_video: bool
    codec: Codec | None = None
    crf: int | None = None
    ext: str | None = None  # frames: None = the input frames' own extension (or .png)
    jpeg_quality: int = 95
    overwrite: bool = False  # replace existing files; otherwise a file that appears meanwhile is an error
    strip_metadata: bool = False  # keep none of the inputs' metadata (frames' profiles, EXIF, ...; a video's tags)


@dataclass
class ClipResult:
    """What a clip run did: frames written, the smoothing's settings, the flicker measures and the timings."""

    output: Path
    frames: int
    rate: str = ""
    temporal: float = 0.0
    sigma_frames: float = 0.0
    cuts: list[int] = field(default_factory=list)
    empty_frames: int = 0
    jitter: float = 0.0  # the median frame-to-frame change of the predicted adjustments (output units, 0..1)
    # Flicker, in code values per frame (mean absolute change from one frame to the next, scene cuts left out):
    flicker_per_frame: float | None = None  # the foreground's correction (output - input), as predicted
    flicker_smoothed: float | None = None  # the same, as written
    background_flicker: float | None = None  # the correction outside the mask (0: the background is untouched)
    output_flicker_per_frame: float | None = None  # the foreground's mean output colour, as predicted
    output_flicker_smoothed: float | None = None  # the same, as written
    input_flicker: float | None = None  # the foreground's mean input colour
    scene_change: float | None = None  # the background's own mean colour, for scale
    analyse_s: float = 0.0
    smooth_s: float = 0.0
    write_s: float = 0.0
    second_decode_s: float = 0.0  # pass 2's reading of the inputs (the cost of two passes), on its thread
    read_s: float = 0.0  # pass 1's reading and shrinking of the inputs, on its thread
    network_s: float = 0.0
    apply_s: float = 0.0
    encode_s: float = 0.0  # on the writer thread
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.analyse_s + self.smooth_s + self.write_s

    def to_json(self) -> dict:
        data = asdict(self)
        data["output"] = str(self.output)
        data["seconds"] = self.seconds
        data["frames_per_second"] = self.frames / self.seconds if self.seconds else None
        return data


def sigma_frames(temporal: float, rate: Fraction | None) -> float:
    """The time kernel's sigma, in frames, for ``--temporal`` (0..1) at ``rate`` frames per second."""
    return float(temporal) * SIGMA_SECONDS_AT_FULL * float(rate or SEQUENCE_RATE)


# --------------------------------------------------------------------------------------------- output plan


def plan_clip_output(
    inputs: ClipInputs,
    output: Path,
    *,
    codec: str | None,
    crf: int | None,
    ext: str | None,
    fps: Fraction | None,
    jpeg_quality: int,
    protect: Iterable[Path],
) -> ClipOutput:
    """Check ``-o`` for a clip: a video file by its extension, else a folder of frames."""
    from harmcli.batch import normalise_extension
    from harmcli.io.images import WRITE_EXTENSIONS

    output = Path(output)
    for other in (*[p for _, p in inputs.spec.roles()], *[p for p in protect if p is not None]):
        if same_file(output, other):
            raise ImageWriteError(f"{output}: this is an input; choose another output (inputs are never overwritten)")
    if is_video(output):
        if ext is not None:
            raise UsageError(f"--ext names the format of frames in a folder, but -o {output} is a video file")
        if inputs.rate is None and fps is None:
            raise UsageError(f"{inputs.primary.path}: frames in a folder have no frame rate; give --fps to write {output}")
        # The output follows the codec of the video it takes its timing from (see choose_codec).
        source = inputs.timing.info if inputs.timing is not None else None
        chosen, chosen_crf = choose_codec(output, codec, crf, source)
        if inputs.size is not None:  # known before decoding for videos and stills: fail before the first pass
            check_frame_size(chosen, inputs.size[1], inputs.size[0], output)
        return ClipOutput(output, True, chosen, chosen_crf)
    if codec is not None or crf is not None:
        raise UsageError(f"--codec and --crf are for video outputs; -o {output} is a folder of frames")
    if output.suffix.lower() in WRITE_EXTENSIONS:
        raise UsageError(f"-o {output}: a clip goes to a video file ({', '.join(('.mp4', '.mov', '.mkv', '.webm'))}) "
                         "or a folder of frames, not one image")
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; a clip's frames go into a folder")
    extension = normalise_extension(ext) if ext else None
    if extension is not None and extension not in WRITE_EXTENSIONS:
        raise UsageError(f"cannot write '{extension}' files; choose one of: {', '.join(a.lstrip('.') for a in WRITE_EXTENSIONS)}")
    return ClipOutput(output, False, ext=extension, jpeg_quality=jpeg_quality)


def frame_names(inputs: ClipInputs, output: ClipOutput, count: int) -> list[str]:
    """File names of the output frames: the input frames' names for a sequence, else 000001.png ..."""
    from harmcli.io.images import WRITE_EXTENSIONS

    primary = inputs.primary
    if isinstance(primary, FolderSource):
        names = []
        for f in primary.files[:count]:
            ext = output.ext or (f.suffix.lower() if f.suffix.lower() in WRITE_EXTENSIONS else ".png")
            names.append(f.stem + ext)
        return names
    digits = max(6, len(str(count)))
    return [f"{i + 1:0{digits}d}{output.ext or '.png'}" for i in range(count)]


def existing_outputs(inputs: ClipInputs, output: ClipOutput) -> list[Path]:
    """The files of ``output`` that already exist (for the --overwrite / --skip-existing rules)."""
    if output.is_video:
        return [output.path] if output.path.exists() else []
    if not output.path.is_dir():
        return []
    count = inputs.count if inputs.count is not None else 0
    names = frame_names(inputs, output, count) if count else []
    found = [output.path / n for n in names if (output.path / n).exists()]
    if not names:  # a video's frame count may be unknown: any image in the folder counts
        from harmcli.io.images import WRITE_EXTENSIONS

        found = [p for p in output.path.iterdir() if p.suffix.lower() in WRITE_EXTENSIONS]
    return found


# ------------------------------------------------------------------------------------------------ threads


def _threaded(make: Callable[[], Iterator], times: dict, key: str, maxsize: int = QUEUE_FRAMES) -> Iterator:
    """Run the generator ``make()`` on a thread, ``maxsize`` items ahead; its errors re-raise here.
    ``times[key]`` accumulates the seconds the thread spends producing items."""
    items: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        gen = None
        try:
            gen = make()
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(gen)
                except StopIteration:
                    break
                finally:
                    times[key] = times.get(key, 0.0) + time.perf_counter() - t0
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(("error", exc))
        finally:
            if gen is not None:
                with contextlib.suppress(Exception):
                    gen.close()

    thread = threading.Thread(target=work, name="harmcli-clip-read", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()
        thread.join()


class _Writer:
    """Consumes items on a thread (encoding), at most ``maxsize`` behind; its errors re-raise in :meth:`put`."""

    def __init__(self, consume: Callable[[object], None], maxsize: int = QUEUE_FRAMES):
        self.items: queue.Queue = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.consume = consume
        self.busy = 0.0
        self.thread = threading.Thread(target=self._work, name="harmcli-clip-write", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            item = self.items.get()
            if item is None:
                return
            if self.error is None:
                started = time.perf_counter()
                try:
                    self.consume(item)
                except BaseException as exc:
                    self.error = exc
                self.busy += time.perf_counter() - started

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.items.put(item)

    def finish(self) -> None:
        """Wait until everything is written; re-raise the writer's error."""
        self.items.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self.error = self.error or InterruptedError()
        with contextlib.suppress(queue.Empty):
            while True:
                self.items.get_nowait()
        self.items.put(None)
        self.thread.join()


# --------------------------------------------------------------------------------------------- pass 1


class _Spool:
    """Fixed-shape arrays appended to a file, read back as one memory-mapped (n, *shape) array."""

    def __init__(self, folder: Path, name: str, shape: tuple[int, ...], dtype=np.float32):
        self.path = folder / name
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.file = open(self.path, "wb")
        self.count = 0

    def append(self, array: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        self.count += 1

    def array(self) -> np.ndarray:
        self.file.close()
        if self.count == 0:
            return np.zeros((0, *self.shape), self.dtype)
        return np.memmap(self.path, self.dtype, "r", shape=(self.count, *self.shape))


@dataclass
class _LowRes:
    index: int
    composite: np.ndarray
    background: np.ndarray
    mask: np.ndarray
    empty: bool


def _low_res_frames(inputs: ClipInputs, size: int) -> Iterator[_LowRes]:
    from harmcli.pipeline import downsample

    for frame in inputs.frames():
        c = downsample(frame.composite, size)
        b = c if frame.background is frame.composite else downsample(frame.background, size)
        m = downsample(frame.mask, size)
        yield _LowRes(frame.index, c, b, m, not bool(frame.mask.any()))


@dataclass
class _Analysis:
    curves: np.ndarray
    gains: np.ndarray
    mask_thumbs: np.ndarray
    composite_thumbs: np.ndarray
    valid: np.ndarray
    cuts: list[int]


def _analyse(inputs: ClipInputs, harmonizer, folder: Path, on_progress: Progress | None, times: dict) -> _Analysis:
    from harmcli.ops.temporal import THUMB, find_scene_cuts, scene_signature, thumbnail

    size = harmonizer.low_res
    gains = _Spool(folder, "gains.f32", (size, size))
    curves, signatures, mask_thumbs, comp_thumbs, valid = [], [], [], [], []
    pending: list[_LowRes] = []
    batch = BATCH["cuda" if str(harmonizer.device).startswith("cuda") else "cpu"]

    def flush() -> None:
        todo = [p for p in pending if not p.empty]
        predicted = {}
        if todo:
            c = np.stack([p.composite for p in todo])
            b = c if all(p.background is p.composite for p in todo) else np.stack([p.background for p in todo])
            m = np.stack([p.mask for p in todo])
            started = time.perf_counter()
            y, s = harmonizer.predict_low_res(c, b, m)
            times["network"] = times.get("network", 0.0) + time.perf_counter() - started
            predicted = {p.index: (y[i], s[i]) for i, p in enumerate(todo)}
        for p in pending:
            if p.empty:  # nothing to adjust: the identity (its curves get their size once one is predicted)
                y, s = None, np.ones((size, size), np.float32)
            else:
                y, s = predicted[p.index]
            curves.append(y)
            gains.append(s)
            valid.append(not p.empty)
        if on_progress is not None:
            on_progress("analyse", len(curves), inputs.count)
        pending.clear()

    for low in _threaded(lambda: _low_res_frames(inputs, size), times, "read"):
        signatures.append(scene_signature(low.background, low.mask))
        mask_thumbs.append(thumbnail(low.mask, THUMB))
        comp_thumbs.append(np.clip(np.rint(thumbnail(low.composite, THUMB) * 255), 0, 255).astype(np.uint8))
        pending.append(low)
        if sum(not p.empty for p in pending) >= batch:
            flush()
    flush()
    if not curves:
        raise InputMismatchError(f"{inputs.primary.path}: no frames to read")
    n_points = next((len(y[0]) for y in curves if y is not None), DEFAULT_POINTS)
    identity = Adjustment.identity(n_points).curve_y
    return _Analysis(
        curves=np.stack([identity if y is None else y for y in curves]).astype(np.float32),
        gains=gains.array(),
        mask_thumbs=np.stack(mask_thumbs).astype(np.float32),
        composite_thumbs=np.stack(comp_thumbs),
        valid=np.array(valid, bool),
        cuts=find_scene_cuts(np.stack(signatures)),
    )


def _measure(result: ClipResult, analysis: _Analysis, smoothed, strength: float, shading_strength: float) -> None:
    """The flicker numbers, on the thumbnails: the foreground's correction and its output colour per frame, as
    predicted and as smoothed, and the background for scale."""
    from harmcli.ops.apply import apply_adjustment
    from harmcli.ops.temporal import flicker, mean_correction

    n = len(analysis.curves)
    masks = analysis.mask_thumbs
    raw, smooth, inside, background, outside_change = (np.zeros((n, 3)) for _ in range(5))
    for t in range(n):
        image = analysis.composite_thumbs[t].astype(np.float32) / 255.0
        outside = masks[t] <= 0
        if outside.any():
            background[t] = 255.0 * image[outside].mean(axis=0)
        if not analysis.valid[t]:
            continue
        weight = masks[t][..., None]
        inside[t] = 255.0 * (image * weight).sum(axis=(0, 1)) / weight.sum()
        raw[t] = mean_correction(image, masks[t], smoothed.raw(t).scaled(strength, shading_strength))
        adjustment = smoothed[t].scaled(strength, shading_strength)
        smooth[t] = mean_correction(image, masks[t], adjustment)
        if outside.any():
            out = apply_adjustment(image, masks[t], adjustment)
            outside_change[t] = 255.0 * (out[outside] - image[outside]).mean(axis=0)
    cuts, valid = analysis.cuts, analysis.valid
    result.flicker_per_frame = flicker(raw, cuts, valid)
    result.flicker_smoothed = flicker(smooth, cuts, valid)
    result.background_flicker = flicker(outside_change, cuts, valid)
    result.output_flicker_per_frame = flicker(inside + raw, cuts, valid)
    result.output_flicker_smoothed = flicker(inside + smooth, cuts, valid)
    result.input_flicker = flicker(inside, cuts, valid)
    result.scene_change = flicker(background, cuts)


# --------------------------------------------------------------------------------------------- pass 2


def _apply_all(inputs: ClipInputs, adjustment_for: Callable[[int], Adjustment | None], write, on_progress, times) -> int:
    """Pass 2 body: read, apply, hand to ``write(frame, image)`` on the writer thread. Returns the frame count."""
    from harmcli.ops.apply import apply_adjustment

    writer = _Writer(lambda item: write(*item))
    count = 0
    try:
        for frame in _threaded(inputs.frames, times, "second_read"):
            started = time.perf_counter()
            adjustment = adjustment_for(frame.index) if frame.mask.any() else None
            image = frame.composite if adjustment is None else apply_adjustment(frame.composite, frame.mask, adjustment)
            times["apply"] = times.get("apply", 0.0) + time.perf_counter() - started
            writer.put((frame, image))
            count += 1
            if on_progress is not None:
                on_progress("write", count, inputs.count)
        if count == 0:  # (pass 1 says the same before any network runs; with --params this is the only pass)
            raise InputMismatchError(f"{inputs.primary.path}: no frames to read")
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        times["encode"] = writer.busy
    return count


def _write_video(inputs: ClipInputs, output: ClipOutput, fps: Fraction | None, adjustment_for, on_progress, times, notes):
    from harmcli.io.images import atomic_write
    from harmcli.io.video import ColorInfo, VideoWriter, container_tags, data_streams, source_timecode, subtitle_streams

    timing = inputs.timing
    if timing is not None:
        rate, time_base = timing.info.rate, timing.info.time_base
    else:
        rate = fps or SEQUENCE_RATE
        time_base = 1 / rate
    tags_from = None if output.strip_metadata else inputs.tags_source()
    tags = container_tags(tags_from) if tags_from is not None else {}
    # The start timecode goes with the frames' times: the timing video's (an editor lines the output up by it).
    timecode = source_timecode(timing.path) if timing is not None and not output.strip_metadata else None
    count = 0

    def encode(fh) -> None:
        nonlocal count
        state: dict = {}

        def write(frame: Frame, image: np.ndarray) -> None:
            if "writer" not in state:
                color = timing.color if timing is not None and timing.color else ColorInfo()
                state["writer"] = VideoWriter(
                    fh, output.path, width=image.shape[1], height=image.shape[0], rate=rate, time_base=time_base,
                    codec=output.codec, crf=output.crf, color=color, audio_from=inputs.audio_source(),
                    deep=image.dtype == np.uint16,  # a 10/12-bit video or 16-bit frames: keep the bits
                    alpha=frame.alpha is not None,  # the first frame decides for the whole clip
                    tags=tags, timecode=timecode,
                )
                state["size"] = image.shape[:2]
            elif image.shape[:2] != state["size"]:
                # Frames of a folder can differ in size; a video's cannot (the encoder would rescale or fail).
                (h, w), (first_h, first_w) = image.shape[:2], state["size"]
                raise InputMismatchError(
                    f"{frame.name} is {w}x{h} but the clip's first frame is {first_w}x{first_h}; a video's frames "
                    "must all have one size (write a frame folder, -o DIR, to keep each frame's own)"
                )
            # A stream without timestamps (a raw .h264 file): the frame's place on the rate's grid, in the time base.
            pts = frame.pts if frame.pts is not None else round(frame.index / (rate * time_base))
            state["writer"].write(_as_video_colour(frame, image, notes), pts, frame.alpha)

        try:
            count = _apply_all(inputs, adjustment_for, write, on_progress, times)
            if "writer" in state:
                state["writer"].close()
                notes.extend(state["writer"].notes)
        except BaseException:
            if "writer" in state:
                state["writer"].abandon()
            raise

    atomic_write(output.path, encode, overwrite=output.overwrite)
    subtitles = sum(subtitle_streams(s.path) for s in inputs.sources.values()
                    if isinstance(s, VideoSource) and s.role != "mask")
    if subtitles:
        notes.append(f"{subtitles} subtitle track{'s were' if subtitles > 1 else ' was'} not copied into {output.path} "
                     "(harmcli copies the picture, the audio and the timecode)")
    # Telemetry (GoPro's gpmd), a phone's timed metadata: tracks no output here could carry as they are.
    data = [d for s in inputs.sources.values() if isinstance(s, VideoSource) and s.role != "mask"
            for d in data_streams(s.path)]
    if data:
        kinds = ", ".join(dict.fromkeys(data))
        notes.append(f"{len(data)} data track{'s' if len(data) > 1 else ''} ({kinds}) {'were' if len(data) > 1 else 'was'} "
                     f"not copied into {output.path} (harmcli copies the picture, the audio and the timecode)")
    return count


def _as_video_colour(frame: Frame, image: np.ndarray, notes: list[str]) -> np.ndarray:
    """A frame's pixels for a video file, which holds no ICC profile and is read as sRGB/Rec. 709: frames from
    files with another profile (Display P3 HEIC frames, an Adobe RGB plate) are converted, and the run says so
    once; a profile that cannot be used leaves the numbers as they are, said once too."""
    from harmcli.io import colour

    icc = frame.metadata.icc if frame.metadata is not None else None
    if icc is None:
        return image
    if colour.same_space(icc, None):
        return image
    try:
        converted, _ = colour.convert(image, icc, None)
    except colour.ProfileError as exc:
        note = (f"a frame's colour profile ({colour.profile_name(icc)!r}) cannot be used ({exc}); its numbers were "
                "written into the video as they are")
        converted = image
    else:
        note = (f"converted the frames from {colour.profile_name(icc)!r} into sRGB for the video, which holds no "
                "colour profile")
    if note not in notes:
        notes.append(note)
    return converted


def _write_frames(inputs: ClipInputs, output: ClipOutput, adjustment_for, on_progress, times) -> int:
    from harmcli.io.images import write_image

    from harmcli.io.safe_write import temp_name

    target = output.path
    temp = target.parent / temp_name(target.name)
    names: list[str] = []
    sequence_names = frame_names(inputs, output, inputs.count) if isinstance(inputs.primary, FolderSource) else None

    def write(frame: Frame, image: np.ndarray) -> None:
        if sequence_names is not None:
            name = sequence_names[frame.index]
        else:
            name = f"{frame.index + 1:06d}{output.ext or '.png'}"
        bit_depth = 16 if image.dtype == np.uint16 else 8
        metadata = None if output.strip_metadata else frame.metadata
        write_image(temp / name, image, bit_depth=bit_depth, jpeg_quality=output.jpeg_quality, alpha=frame.alpha,
                    metadata=metadata)
        names.append(name)

    try:
        temp.mkdir(parents=True)
        count = _apply_all(inputs, adjustment_for, write, on_progress, times)
        if not target.exists():
            os.rename(temp, target)
        else:
            for name in names:
                if output.overwrite:
                    os.replace(temp / name, target / name)
                else:  # a hard link fails if the name exists: a file that appeared meanwhile is never replaced
                    try:
                        os.link(temp / name, target / name)
                    except FileExistsError:
                        raise ImageWriteError(f"{target / name}: already exists (it appeared while this run was writing)") from None
            shutil.rmtree(temp)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return count


# ------------------------------------------------------------------------------------------------ entry


def harmonize_clip(
    inputs: ClipInputs,
    output: ClipOutput,
    *,
    harmonizer=None,
    fixed: Adjustment | None = None,
    temporal: float = 0.5,
    strength: float = 1.0,
    shading_strength: float = 1.0,
    fps: Fraction | None = None,
    on_progress: Progress | None = None,
) -> ClipResult:
    """Harmonize every frame of ``inputs`` into ``output``.

    Args:
        harmonizer: a loaded :class:`harmcli.pipeline.Harmonizer` (predicts each frame), or
        fixed: one adjustment for every frame (``--params``; no network, no smoothing).
        temporal: 0..1, how strongly the adjustment is smoothed over time (0 = each frame as predicted).
        fps: frame rate for a frame folder written as a video (folders have none).
        on_progress: called as ``on_progress(phase, frames_done, frames_total_or_None)``, phase "analyse"/"write".
    """
    if (harmonizer is None) == (fixed is None):
        raise ValueError("give a harmonizer or a fixed adjustment")
    rate = inputs.rate or fps
    result = ClipResult(output.path, 0, rate=str(rate) if rate else "", temporal=temporal)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="harmcli-clip-") as scratch:
        if fixed is not None:
            adjusted = fixed.scaled(strength, shading_strength)

            def adjustment_for(index: int) -> Adjustment:
                return adjusted
        else:
            from harmcli.ops.temporal import SmoothedAdjustments

            started = time.perf_counter()
            analysis = _analyse(inputs, harmonizer, Path(scratch), on_progress, times)
            result.analyse_s = time.perf_counter() - started
            result.notes.extend(inputs.short_videos())
            started = time.perf_counter()
            result.sigma_frames = sigma_frames(temporal, rate)
            smoothed = SmoothedAdjustments(
                analysis.curves, analysis.gains, analysis.mask_thumbs, sigma_frames=result.sigma_frames,
                cuts=analysis.cuts, valid=analysis.valid, images=analysis.composite_thumbs,
            )
            result.cuts, result.jitter = analysis.cuts, smoothed.jitter
            result.empty_frames = int((~analysis.valid).sum())
            _measure(result, analysis, smoothed, strength, shading_strength)
            result.smooth_s = time.perf_counter() - started
            expected = len(analysis.curves)

            def adjustment_for(index: int) -> Adjustment:
                if index >= expected:
                    raise InputMismatchError(f"{inputs.primary.path}: more frames on the second read than on the first")
                return smoothed[index].scaled(strength, shading_strength)

        started = time.perf_counter()
        if output.is_video:
            result.frames = _write_video(inputs, output, fps, adjustment_for, on_progress, times, result.notes)
        else:
            result.frames = _write_frames(inputs, output, adjustment_for, on_progress, times)
        result.write_s = time.perf_counter() - started
    if fixed is not None:  # with a network, pass 1 said it (before the output was written)
        result.notes.extend(inputs.short_videos())
    result.notes.extend(inputs.colour_notes)
    result.notes.extend(inputs.pairing_notes)
    result.second_decode_s = times.get("second_read", 0.0) if fixed is None else 0.0
    result.read_s = times.get("read", 0.0)
    result.network_s, result.apply_s, result.encode_s = (times.get(k, 0.0) for k in ("network", "apply", "encode"))
    if result.empty_frames:
        result.notes.append(f"{result.empty_frames} frames have an empty mask and were written unchanged")
    return result
