"""Real renders with Blender (tiny: 64x64, 2 samples, 2 scenes). Skipped where bpy is not installed: it lives in
its own virtualenv (see the README's "Run the tests")."""

import json
import math
import os

import cv2
import numpy as np
import pytest

pytest.importorskip("bpy")

from harmcli.render.dataset import RenderOptions, contact_sheet, render_dataset  # noqa: E402
from harmcli.render.styles import STYLES  # noqa: E402

# One style of each kind of world: the multiple-scattering sky, the Hosek-Wilkie sky with clouds, the overcast
# dome, the night HDR with lamps.
STYLES_UNDER_TEST = ("clear_sunrise_sunset", "partly_cloudy_noon", "cloudy_other", "night")
OPTIONS = RenderOptions(scenes=2, size=64, samples=2, objects=3, seed=3, styles=STYLES_UNDER_TEST, val_fraction=0.5)


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _gray(path):
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "rd"
    steps = []
    summary = render_dataset(out, OPTIONS, on_step=lambda scene, style: steps.append((scene, style)))
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return out, summary, rows, steps


def test_layout_is_what_make_composites_writes_plus_the_renders(rendered):
    out, summary, rows, steps = rendered
    assert summary.rendered == ["scene00000", "scene00001"] and summary.skipped == []
    assert summary.pairs == len(rows) > 0
    for sub in ("composites", "backgrounds", "masks", "targets"):
        assert (out / sub).is_dir()
    assert json.loads((out / "render.json").read_text())["styles"] == list(STYLES_UNDER_TEST)
    for scene in summary.rendered:
        folder = out / "renders" / scene
        for style in STYLES_UNDER_TEST:
            assert _rgb(folder / f"{style}.png").shape == (64, 64, 3)
        record = json.loads((folder / "scene.json").read_text())
        assert 1 <= len(record["objects"]) <= 3
        assert sorted(p.name for p in folder.glob("mask*.png")) == [f"mask{k}.png" for k in range(len(record["objects"]))]
    # every style once per scene, then the masks
    assert steps == [(s, style) for s in summary.rendered for style in (*STYLES_UNDER_TEST, "masks")]
    for row in rows:
        for key in ("composite", "background", "mask", "target"):
            assert (out / row[key]).is_file()
        assert _rgb(out / row["composite"]).shape == (64, 64, 3) and _gray(out / row["mask"]).shape == (64, 64)


def test_manifest_rows_carry_domain_scene_styles_labels_and_a_split_by_scene(rendered):
    out, summary, rows, _ = rendered
    splits = {}
    for row in rows:
        assert row["domain"] == "rendered" and row["role"] == "supervised" and row["scene"] in summary.rendered
        assert row["style_fg"] != row["style_bg"] and {row["style_fg"], row["style_bg"]} <= set(STYLES_UNDER_TEST)
        label = row["style_label"]
        assert len(label) == 10 and sum(label) == pytest.approx(1.0, abs=1e-5)
        area = _gray(out / row["mask"]).mean() / 255.0
        assert label[STYLES.index(row["style_fg"])] == pytest.approx(area, abs=1e-5)  # the foreground's share
        assert label[STYLES.index(row["style_bg"])] == pytest.approx(1 - area, abs=1e-5)
        assert row["target_style_label"] == [1.0 if s == row["style_bg"] else 0.0 for s in STYLES]
        assert row["split"] in ("train", "val")
        splits.setdefault(row["scene"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())  # a scene is never in both splits
    # one composite per object and background style, each with another foreground style
    for scene in summary.rendered:
        for obj in {r["object"] for r in rows if r["scene"] == scene}:
            mine = [r for r in rows if r["scene"] == scene and r["object"] == obj]
            assert sorted(r["style_bg"] for r in mine) == sorted(STYLES_UNDER_TEST)


def test_composite_is_the_target_outside_the_mask_and_the_other_style_inside(rendered):
    out, _, rows, _ = rendered
    for row in rows:
        composite, target, mask = _rgb(out / row["composite"]), _rgb(out / row["target"]), _gray(out / row["mask"])
        outside, inside = mask == 0, mask == 255
        assert outside.any() and inside.any()
        assert np.array_equal(composite[outside], target[outside])  # bit for bit
        fg_render = _rgb(out / "renders" / row["scene"] / f"{row['style_fg']}.png")
        assert np.array_equal(composite[inside], fg_render[inside])
        assert np.array_equal(target, _rgb(out / "renders" / row["scene"] / f"{row['style_bg']}.png"))
        # soft edge: a blend of the two renders by the mask
        edge = (mask > 0) & (mask < 255)
        assert edge.any()
        m = mask[edge].astype(np.float64)[:, None] / 255
        expected = m * fg_render[edge] + (1 - m) * target[edge]
        assert np.abs(composite[edge] - expected).max() <= 0.5 + 1e-6


def test_foregrounds_differ_between_styles(rendered):
    out, summary, rows, _ = rendered
    for row in rows:
        mask = _gray(out / row["mask"]) == 255
        fg = _rgb(out / "renders" / row["scene"] / f"{row['style_fg']}.png")[mask].astype(float)
        bg = _rgb(out / "renders" / row["scene"] / f"{row['style_bg']}.png")[mask].astype(float)
        # relative: a dark object differs by a few code values, a bright one by tens
        assert np.abs(fg - bg).mean() > 0.1 * max(4.0, (fg.mean() + bg.mean()) / 2), row["id"]
    # and the styles look different as a whole (mean colour), night the darkest
    for scene in summary.rendered:
        means = {s: _rgb(out / "renders" / scene / f"{s}.png").astype(float).mean((0, 1)) for s in STYLES_UNDER_TEST}
        for a in STYLES_UNDER_TEST:
            for b in STYLES_UNDER_TEST:
                if a < b:
                    assert np.abs(means[a] - means[b]).max() > 2.0, (scene, a, b)
        assert means["night"].mean() == min(m.mean() for m in means.values())
        assert means["night"].mean() > 10  # not black


def test_masks_are_anti_aliased_and_match_the_objects(rendered):
    out, summary, _, _ = rendered
    for scene in summary.rendered:
        folder = out / "renders" / scene
        masks = [_gray(p).astype(np.float64) / 255 for p in sorted(folder.glob("mask*.png"))]
        total = sum(masks)
        assert total.max() <= 1.0 + 3 / 255  # objects never overlap in coverage
        for mask in masks:
            soft = (mask > 0) & (mask < 1)
            if (mask == 1).any():
                assert soft.sum() > 0
        # where an object is, its colour differs between a lit style and the night more than the sky does not:
        # the mask sits on the object in the renders (edges of the mask = edges in the image)
        image = _rgb(folder / "cloudy_other.png").astype(np.float64).mean(2)
        for mask in masks:
            if (mask == 1).sum() < 6:
                continue
            grad = np.hypot(*np.gradient(image))
            edge = (mask > 0.2) & (mask < 0.8)
            assert grad[edge].mean() > grad[mask == 0].mean()


def test_resumed_run_renders_nothing_twice_and_redoes_a_half_written_scene(rendered, tmp_path):
    out, _, rows, _ = rendered
    manifest = (out / "manifest.jsonl").read_text()
    renders = sorted((out / "renders").glob("*/*.png"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in renders}
    steps = []
    again = render_dataset(out, OPTIONS, on_step=lambda scene, style: steps.append(scene))
    assert again.rendered == [] and again.skipped == ["scene00000", "scene00001"] and steps == []
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in renders} == before
    assert (out / "manifest.jsonl").read_text() == manifest
    # a scene without its rows.jsonl was interrupted: it is rendered again, and only it
    (out / "renders" / "scene00001" / "rows.jsonl").unlink()
    os.remove(out / "renders" / "scene00001" / "night.png")
    again = render_dataset(out, OPTIONS, on_step=lambda scene, style: steps.append(scene))
    assert again.rendered == ["scene00001"] and again.skipped == ["scene00000"]
    assert set(steps) == {"scene00001"}
    # the same seed gives the same frames, so the manifest is what it was
    assert (out / "manifest.jsonl").read_text() == manifest
    for path, (_, data) in before.items():
        if "scene00000" in str(path):
            assert path.read_bytes() == data


def test_resume_with_other_options_is_refused(rendered):
    from dataclasses import replace

    from harmcli.errors import UsageError

    out = rendered[0]
    with pytest.raises(UsageError, match="size 64 -> 128"):
        render_dataset(out, replace(OPTIONS, size=128))


def test_occluded_part_of_an_object_is_not_in_its_mask(tmp_path):
    """A box behind a wall: the mask covers only what the camera sees of it."""
    from harmcli.render.blender import BlenderRenderer
    from harmcli.render.scenes import Camera, Material, Mesh, Scene, box

    grey = Material((0.5, 0.5, 0.5), 0.8)
    ground_v, _ = box(40, 40, 0)
    target_v, target_f = box(2.0, 1.0, 1.0)
    wall_v, wall_f = box(0.6, 0.1, 2.0)
    scene = Scene("occlusion", [
        Mesh("ground", "ground", ground_v[:4], [(0, 1, 3, 2)], grey),
        Mesh("fg0", "cabinet", target_v, target_f, grey, foreground=True),
        Mesh("wall", "wall", wall_v, wall_f, grey, location=(0.0, -1.5, 0.0)),  # between the camera and the box
    ], Camera((0.0, -6.0, 0.5), (0.0, 0.0, 0.5), 50.0))
    renderer = BlenderRenderer(64, 1)
    renderer.build(scene)
    (mask,) = renderer.render_masks(tmp_path / "m")
    columns = mask[20:44].max(0)
    assert columns[32] == 0.0  # behind the wall, in the middle of the frame
    assert columns[20] == 1.0 and columns[44] == 1.0  # left and right of the wall
    assert 0 < mask.sum() < 64 * 64


def test_contact_sheet_has_a_row_per_scene_and_a_column_per_style(rendered, tmp_path):
    out, summary, _, _ = rendered
    path = contact_sheet(out, tmp_path / "sheet.png", thumb=48)
    sheet = _rgb(path)
    cols = len(STYLES_UNDER_TEST) + 1
    assert sheet.shape == (30 + 2 * 50, 96 + cols * 50, 3)
    # each thumbnail is the render, resized
    first = cv2.resize(_rgb(out / "renders" / "scene00000" / f"{STYLES_UNDER_TEST[0]}.png"), (48, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(sheet[30:78, 96:144], first)


def test_two_runs_on_one_folder_share_the_scenes(rendered):
    """A scene claimed by a live process is left to it; a claim whose process died is taken over."""
    import socket
    import subprocess
    import sys

    out = rendered[0]
    folder = out / "renders" / "scene00001"
    (folder / "rows.jsonl").unlink()
    (folder / ".claim").write_text(f"{socket.gethostname()} {os.getppid()}")  # alive: pytest's parent
    steps = []
    summary = render_dataset(out, OPTIONS, on_step=lambda scene, style: steps.append(scene))
    assert summary.rendered == [] and summary.elsewhere == ["scene00001"] and steps == []
    assert not (folder / "rows.jsonl").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (folder / ".claim").write_text(f"{socket.gethostname()} {dead}")
    summary = render_dataset(out, OPTIONS, on_step=lambda scene, style: steps.append(scene))
    assert summary.rendered == ["scene00001"] and set(steps) == {"scene00001"}
    assert (folder / "rows.jsonl").exists() and not (folder / ".claim").exists()


def test_one_split_renders_the_same_scenes_a_full_run_makes(rendered, tmp_path):
    from dataclasses import replace

    out, _, rows, _ = rendered
    # at --val-fraction 0.5 scene00000 is held out and scene00001 is not
    steps = []
    held_out = render_dataset(tmp_path / "val", replace(OPTIONS, only_split="val"), on_step=lambda scene, style: steps.append(scene))
    assert held_out.rendered == ["scene00000"] and set(steps) == {"scene00000"}
    val_rows = [json.loads(line) for line in (tmp_path / "val" / "manifest.jsonl").read_text().splitlines()]
    assert val_rows == [r for r in rows if r["scene"] == "scene00000"] and {r["split"] for r in val_rows} == {"val"}
    for style in STYLES_UNDER_TEST:  # the same pictures as the full run's, within the path tracer's noise
        # (a render that follows others in one process is not always bit-exact: up to 3 levels on average here)
        a = _rgb(tmp_path / "val" / "renders" / "scene00000" / f"{style}.png").astype(int)
        b = _rgb(out / "renders" / "scene00000" / f"{style}.png").astype(int)
        assert np.abs(a - b).mean() < 3.0
    for k in range(3):
        mask = out / "renders" / "scene00000" / f"mask{k}.png"
        if mask.exists():
            assert np.array_equal(_gray(tmp_path / "val" / "renders" / "scene00000" / f"mask{k}.png"), _gray(mask))
    # a full run on the same folder adds the other scene only
    rest = render_dataset(tmp_path / "val", OPTIONS)
    assert rest.rendered == ["scene00001"] and rest.skipped == ["scene00000"]
