"""``harmcli render``: rendered harmonization pairs (paper 2, §3) in the layout ``make-composites`` writes.

For each scene: every style is rendered from the same camera (``renders/SCENE/STYLE.png``) and each foreground
object gets an exact coverage mask (``renders/SCENE/maskK.png``). A composite takes object K from the render of
style *a* and everything else from style *b*; its target is the style-*b* render, so outside the mask the
composite *is* the target, bit for bit. Its style label mixes the two one-hot labels by foreground area.

The output folder is the one ``train`` and ``eval`` read: ``composites/``, ``backgrounds/`` (the composite with
the object inpainted away, as ``make-composites`` does), ``masks/``, ``targets/`` (hard links to the renders)
and ``manifest.jsonl``. A scene is finished when its ``renders/SCENE/rows.jsonl`` exists (written last,
atomically); a run on the same folder skips finished scenes and redoes a half-written one, and the manifest is
rebuilt from the finished scenes after each one, so a folder being rendered can already be read.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from harmcli.data.composites import MIN_FOREGROUND_FRACTION, _dilation, _item_rng, opencv_inpaint, split_of
from harmcli.data.retouch import dilate_mask
from harmcli.errors import DatasetError, HarmcliError, UsageError
from harmcli.render.scenes import make_scene
from harmcli.render.styles import SHORT_NAMES, STYLES, sample_style, style_label

SUBFOLDERS = ("composites", "backgrounds", "masks", "targets")
CONFIG_FILE = "render.json"
# Options that change what a scene looks like: a resumed run must use the same ones.
CONFIG_KEYS = ("seed", "size", "samples", "objects", "styles", "pairs", "bounces", "denoise", "val_fraction")


@dataclass
class RenderOptions:
    scenes: int = 10
    size: int = 256
    samples: int = 4
    objects: int = 3
    seed: int = 0
    styles: tuple[str, ...] = STYLES
    pairs: int = 1  # composites per foreground object and background style
    bounces: int = 2
    denoise: bool = True
    val_fraction: float = 0.1
    device: str = "cpu"
    threads: int = 0
    # Render only the scenes of one split ("train" or "val"): the same scenes, lights and pairs that a full run makes
    # of that split (a full run later on the same folder adds the rest). None: every scene.
    only_split: str | None = None

    def config(self) -> dict:
        values = asdict(self)
        values["styles"] = list(self.styles)
        return {key: values[key] for key in CONFIG_KEYS}


@dataclass
class RenderSummary:
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # rendered meanwhile by another run on the same folder
    pairs: int = 0  # manifest rows in the folder (all finished scenes)
    seconds: float = 0.0  # rendering time of this run


def scene_name(index: int) -> str:
    return f"scene{index:05d}"


def check_options(options: RenderOptions) -> None:
    unknown = [s for s in options.styles if s not in STYLES]
    if unknown:
        raise UsageError(f"unknown style(s) {', '.join(unknown)}; choose from {', '.join(STYLES)}")
    if len(set(options.styles)) < 2:
        raise UsageError("--styles needs at least two styles: a composite mixes two")
    if not 1 <= options.pairs < len(set(options.styles)):
        raise UsageError(f"--pairs must be between 1 and {len(set(options.styles)) - 1} (the other styles), got {options.pairs}")
    for name, low in (("scenes", 1), ("size", 16), ("samples", 1), ("objects", 1)):
        if getattr(options, name) < low:
            raise UsageError(f"--{name} must be at least {low}, got {getattr(options, name)}")
    if options.only_split not in (None, "train", "val"):
        raise UsageError(f"--split must be all, train or val, not '{options.only_split}'")
    if not chosen_scenes(options):
        raise UsageError(f"none of the {options.scenes} scene(s) is in the {options.only_split} split at --val-fraction "
                         f"{options.val_fraction:g}: render more scenes or all of them")


def chosen_scenes(options: RenderOptions) -> list[int]:
    """The indices of the scenes a run covers: the first ``scenes``, or those of them in ``only_split``."""
    return [i for i in range(options.scenes)
            if options.only_split is None or split_of(scene_name(i), options.val_fraction) == options.only_split]


def _prepare_folder(out: Path, options: RenderOptions) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: is a file; the output must be a folder")
    config_path = out / CONFIG_FILE
    if config_path.is_file():
        try:
            previous = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{config_path}: unreadable ({exc}); render into a new folder") from None
        changed = [f"{key} {previous.get(key)!r} -> {value!r}" for key, value in options.config().items() if previous.get(key) != value]
        if changed:
            raise UsageError(f"{out} was rendered with other options ({'; '.join(changed)}); give the same ones to resume, "
                             "or render into a new folder")
    elif out.is_dir() and (out / "manifest.jsonl").exists():
        raise DatasetError(f"{out}: holds a manifest.jsonl not made by 'harmcli render'; choose a new folder")
    for sub in (*SUBFOLDERS, "renders"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if not config_path.is_file():
        _write_atomic(config_path, json.dumps(options.config(), indent=1) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # several workers may write the manifest
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_png(path: Path, image: np.ndarray, compression: int = 3) -> None:
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    if not cv2.imwrite(str(path), data, [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise HarmcliError(f"{path}: could not be written")


def _read_rgb(path: Path) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        raise DatasetError(f"{path}: missing or not an image")
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def _link(src: Path, dst: Path) -> None:
    """A hard link (no second copy of a render), or a copy where links are not possible."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def composite_pair(fg_render: np.ndarray, bg_render: np.ndarray, mask8: np.ndarray) -> np.ndarray:
    """uint8 composite ``m·A + (1−m)·B`` with m = mask8 / 255; where the mask is 0 it equals B exactly."""
    m = mask8.astype(np.float32)[..., None] / 255.0
    out = m * fg_render.astype(np.float32) + (1.0 - m) * bg_render.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def make_pairs(out: Path, name: str, kinds: list[str], masks: list[np.ndarray], styles: tuple[str, ...], *, seed: int, index: int,
               pairs: int, split: str) -> list[dict]:
    """The composites of one rendered scene (its renders and masks are in ``out/renders/name``); manifest rows."""
    folder = out / "renders" / name
    renders = {style: _read_rgb(folder / f"{style}.png") for style in styles}
    rows = []
    for k, mask8 in enumerate(masks):
        fraction = float((mask8 > 127).mean())
        if not MIN_FOREGROUND_FRACTION <= fraction <= 1.0 - MIN_FOREGROUND_FRACTION:
            continue  # hidden behind something, or filling the frame: nothing to harmonize against
        area = float(mask8.mean() / 255.0)  # soft coverage: the foreground's share of the image
        rng = _item_rng(seed, "pairs", index, k)
        hole = dilate_mask(mask8.astype(np.float32) / 255.0, _dilation(mask8.shape))
        for bg_style in styles:
            others = [s for s in styles if s != bg_style]
            for fg_style in rng.choice(others, size=pairs, replace=False):
                fg_style = str(fg_style)
                sample_id = f"{name}_o{k}_{fg_style}_on_{bg_style}"
                composite = composite_pair(renders[fg_style], renders[bg_style], mask8)
                background = opencv_inpaint(composite.astype(np.float32) / 255.0, hole)
                rel = {sub: f"{sub}/{sample_id}.png" for sub in SUBFOLDERS}
                _write_png(out / rel["composites"], composite)
                _write_png(out / rel["backgrounds"], np.clip(background * 255.0 + 0.5, 0, 255).astype(np.uint8))
                _link(folder / f"mask{k}.png", out / rel["masks"])
                _link(folder / f"{bg_style}.png", out / rel["targets"])
                rows.append({
                    "id": sample_id, "mode": "rendered", "role": "supervised", "split": split,
                    "composite": rel["composites"], "background": rel["backgrounds"], "mask": rel["masks"], "target": rel["targets"],
                    "sources": [name], "seed": seed,
                    "domain": "rendered", "scene": name, "object": k, "object_kind": kinds[k],
                    "style_fg": fg_style, "style_bg": bg_style, "fg_fraction": round(area, 6),
                    "style_label": [round(v, 6) for v in style_label(fg_style, bg_style, area)],
                    "target_style_label": style_label(bg_style, bg_style, 0.0),
                })
    return rows


def finished_scenes(out: Path) -> list[str]:
    folder = out / "renders"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/rows.jsonl"))


def write_manifest(out: Path) -> int:
    """Rebuild ``manifest.jsonl`` from every finished scene (atomic); the number of rows."""
    lines = []
    for name in finished_scenes(out):
        lines += [line for line in (out / "renders" / name / "rows.jsonl").read_text().splitlines() if line.strip()]
    _write_atomic(out / "manifest.jsonl", "".join(line + "\n" for line in lines))
    return len(lines)


def render_scene(renderer, out: Path, index: int, options: RenderOptions, on_step: Callable[[str, str], None] | None = None) -> dict:
    """Render scene ``index`` into ``out/renders/NAME`` and write its pairs; returns its record (scene.json)."""
    name = scene_name(index)
    folder = out / "renders" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").unlink(missing_ok=True)
    start = time.perf_counter()
    scene = make_scene(name, _item_rng(options.seed, "scene", index), max_objects=options.objects)
    renderer.build(scene)
    fg = scene.foreground
    center = (float(np.mean([m.location[0] for m in fg])), float(np.mean([m.location[1] for m in fg])))
    lights, timings = {}, {}
    for style in options.styles:
        t0 = time.perf_counter()
        if on_step:
            on_step(name, style)
        light = sample_style(style, _item_rng(options.seed, "style", index, style), center=center)
        renderer.render_style(light, folder / f"{style}.png", seed=options.seed * 1009 + index)
        lights[style] = asdict(light)
        timings[style] = round(time.perf_counter() - t0, 2)
    if on_step:
        on_step(name, "masks")
    t0 = time.perf_counter()
    masks = []
    for k, coverage in enumerate(renderer.render_masks(folder / ".mask")):
        mask8 = np.clip(coverage * 255.0 + 0.5, 0, 255).astype(np.uint8)
        _write_png(folder / f"mask{k}.png", mask8)
        masks.append(mask8)
    timings["masks"] = round(time.perf_counter() - t0, 2)
    render_seconds = time.perf_counter() - start
    rows = make_pairs(out, name, [m.kind for m in fg], masks, options.styles, seed=options.seed, index=index, pairs=options.pairs,
                      split=split_of(name, options.val_fraction))
    record = {"scene": name, "index": index, "objects": [m.kind for m in fg], "pairs": len(rows),
              "render_seconds": round(render_seconds, 2), "seconds": round(time.perf_counter() - start, 2), "timings": timings, "lighting": lights}
    _write_atomic(folder / "scene.json", json.dumps(record, indent=1) + "\n")
    _write_atomic(folder / "rows.jsonl", "".join(json.dumps(row) + "\n" for row in rows))  # last: the scene is done
    return record


CLAIM_FILE = ".claim"


def _claim(out: Path, name: str) -> bool:
    """Take scene ``name`` for this process: False if another live process on this machine (or any process on
    another machine sharing the folder) is rendering it. A claim left by a process that died is taken over."""
    folder = out / "renders" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_FILE
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):
                host, pid = socket.gethostname(), "0"
            if host != socket.gethostname():
                return False
            try:
                os.kill(int(pid), 0)
                if int(pid) != os.getpid():
                    return False
            except (ProcessLookupError, ValueError):
                pass  # its process is gone: the scene was left half-written
            except PermissionError:
                return False  # alive, another user's
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(me)
        return True
    return False


def render_dataset(out: Path, options: RenderOptions, *, on_start: Callable[[int, int], None] | None = None,
                   on_step: Callable[[str, str], None] | None = None, on_scene: Callable[[dict], None] | None = None) -> RenderSummary:
    """Render ``options.scenes`` scenes into ``out`` (resuming), keep ``manifest.jsonl`` current.

    ``on_start(to_render, already_done)`` is called once, ``on_step(scene, style)`` before each render and
    ``on_scene(record)`` after each finished scene (``{"scene": name, "elsewhere": True}`` for one that another
    run on the same folder rendered or is rendering).
    """
    check_options(options)
    out = Path(out)
    done = set(finished_scenes(out))
    chosen = chosen_scenes(options)
    todo = [i for i in chosen if scene_name(i) not in done]
    if todo:  # a missing bpy is one line before anything is written
        from harmcli.render.blender import import_bpy

        import_bpy()
    _prepare_folder(out, options)
    summary = RenderSummary(skipped=[scene_name(i) for i in chosen if scene_name(i) in done])
    if on_start:
        on_start(len(todo), len(summary.skipped))
    start = time.perf_counter()
    if todo:
        from harmcli.render.blender import BlenderRenderer

        renderer = BlenderRenderer(options.size, options.samples, device=options.device, threads=options.threads,
                                   bounces=options.bounces, denoise=options.denoise)
        for index in todo:
            name = scene_name(index)
            # Several runs may share a folder (two processes, or machines on a network drive): each scene is
            # claimed first, and one finished meanwhile by another run is not rendered again.
            if (out / "renders" / name / "rows.jsonl").exists() or not _claim(out, name):
                summary.elsewhere.append(name)
                if on_scene:
                    on_scene({"scene": name, "elsewhere": True})
                continue
            try:
                record = render_scene(renderer, out, index, options, on_step)
            finally:
                (out / "renders" / name / CLAIM_FILE).unlink(missing_ok=True)
            summary.rendered.append(record["scene"])
            write_manifest(out)
            if on_scene:
                on_scene(record)
    summary.pairs = write_manifest(out)
    summary.seconds = time.perf_counter() - start
    return summary


# ------------------------------------------------------------------------------------------ contact sheet


def contact_sheet(out: Path, path: Path, *, scenes: list[str] | None = None, limit: int = 8, thumb: int = 112) -> Path:
    """A PNG with one row per scene (its styles side by side, then its object masks), labelled."""
    out = Path(out)
    names = scenes if scenes is not None else finished_scenes(out)[:limit]
    if not names:
        raise DatasetError(f"{out}: no finished scene to show")
    config = json.loads((out / CONFIG_FILE).read_text()) if (out / CONFIG_FILE).is_file() else {}
    styles = [s for s in config.get("styles", STYLES)]
    label_w, header_h, pad = 96, 30, 2
    cols = len(styles) + 1
    sheet = np.full((header_h + len(names) * (thumb + pad), label_w + cols * (thumb + pad), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for c, title in enumerate([SHORT_NAMES.get(s, s) for s in styles] + ["objects"]):
        x = label_w + c * (thumb + pad) + 3
        words = title.split(" ")
        for line, text in enumerate([" ".join(words[:1]), " ".join(words[1:])] if len(title) > 14 else [title]):
            cv2.putText(sheet, text, (x, 12 + 13 * line), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    for r, name in enumerate(names):
        y = header_h + r * (thumb + pad)
        cv2.putText(sheet, name, (4, y + thumb // 2), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        folder = out / "renders" / name
        for c, style in enumerate(styles):
            image = _read_rgb(folder / f"{style}.png")
            x = label_w + c * (thumb + pad)
            sheet[y:y + thumb, x:x + thumb] = cv2.resize(image, (thumb, thumb), interpolation=cv2.INTER_AREA)
        palette = np.array([[230, 60, 60], [60, 200, 60], [70, 110, 240], [230, 200, 40], [200, 70, 220], [40, 200, 210]], np.float32)
        overlay = np.zeros((thumb, thumb, 3), np.float32)
        for k, mask_path in enumerate(sorted(folder.glob("mask*.png"))):
            mask = cv2.resize(cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE), (thumb, thumb), interpolation=cv2.INTER_AREA)
            overlay += mask[..., None].astype(np.float32) / 255.0 * palette[k % len(palette)]
        x = label_w + len(styles) * (thumb + pad)
        sheet[y:y + thumb, x:x + thumb] = np.clip(overlay, 0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_png(path, sheet, compression=9)
    return path
