"""Procedural scenes as plain data (no ``bpy``): meshes as NumPy arrays, materials and a camera.

A scene is an outdoor set: a large textured ground, a few walls behind the subject, clutter that casts shadows
and bounces light, and one to three foreground objects near the origin, each of a category built here from a
few random numbers (bottles and vases lathed from a profile, tables, chairs and cabinets from bevelled boxes,
rounded organic blobs, figurines, Blender's Suzanne). Variety matters more than the realism of one object.
:func:`make_scene` is a pure function of its seed, so a scene can be rebuilt exactly.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

FOREGROUND_KINDS = ("vase", "bottle", "table", "chair", "cabinet", "blob", "figurine", "suzanne")


@dataclass
class Material:
    color: tuple[float, float, float]
    roughness: float
    metallic: float = 0.0
    coat: float = 0.0
    texture: str | None = None  # noise | checker | wave | brick | voronoi
    color2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    texture_scale: float = 1.0


@dataclass
class Mesh:
    name: str
    kind: str
    verts: np.ndarray | None  # (N, 3) float; None for 'suzanne' (Blender's own mesh, see blender.py)
    faces: list[tuple[int, ...]]
    material: Material
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_z: float = 0.0  # radians
    scale: float = 1.0
    smooth: bool = False
    bevel: float = 0.0  # bevel width in metres (0: none)
    foreground: bool = False


@dataclass
class Camera:
    location: tuple[float, float, float]
    target: tuple[float, float, float]
    lens: float  # mm, 36 mm sensor


@dataclass
class Scene:
    name: str
    meshes: list[Mesh] = field(default_factory=list)
    camera: Camera | None = None

    @property
    def foreground(self) -> list[Mesh]:
        return [m for m in self.meshes if m.foreground]


# ------------------------------------------------------------------------------------------ geometry


def box(sx: float, sy: float, sz: float, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, list]:
    """A box of size (sx, sy, sz) whose bottom face is centred on ``center``."""
    cx, cy, cz = center
    x, y = sx / 2, sy / 2
    v = np.array([[cx + a, cy + b, cz + c] for c in (0, sz) for b in (-y, y) for a in (-x, x)], dtype=np.float64)
    f = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    return v, f


def lathe(profile: list[tuple[float, float]], segments: int = 32, cap_bottom=True, cap_top=False, center=(0.0, 0.0, 0.0)):
    """A surface of revolution about Z from (radius, height) points, bottom to top."""
    cx, cy, cz = center
    angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    verts = [[cx + r * math.cos(a), cy + r * math.sin(a), cz + z] for r, z in profile for a in angles]
    faces = []
    for i in range(len(profile) - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            faces.append((a, b, b + segments, a + segments))
    for cap, ring in ((cap_bottom, 0), (cap_top, len(profile) - 1)):
        if cap:
            verts.append([cx, cy, cz + profile[ring][1]])
            c = len(verts) - 1
            for j in range(segments):
                a, b = ring * segments + j, ring * segments + (j + 1) % segments
                faces.append((b, a, c) if ring == 0 else (a, b, c))
    return np.array(verts, dtype=np.float64), faces


def cylinder(radius: float, height: float, segments=24, center=(0.0, 0.0, 0.0)):
    return lathe([(radius, 0.0), (radius, height)], segments, cap_bottom=True, cap_top=True, center=center)


def sphere(radius: float, rings=16, segments=32, center=(0.0, 0.0, 0.0), displace=None):
    """A UV sphere; ``displace(unit_dirs) -> radius factors`` bends it into a blob."""
    theta = np.linspace(0, math.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    dirs = np.vstack([dirs, [[0, 0, -1], [0, 0, 1]]])
    r = radius * (displace(dirs) if displace else np.ones(len(dirs)))
    verts = dirs * r[:, None] + np.array(center)
    faces = []
    n = rings - 1
    for i in range(n - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            faces.append((a, a + segments, b + segments, b))
    top, bottom = len(verts) - 1, len(verts) - 2
    for j in range(segments):
        faces.append((top, j, (j + 1) % segments)[::-1])
        a, b = (n - 1) * segments + j, (n - 1) * segments + (j + 1) % segments
        faces.append((bottom, b, a)[::-1])
    return verts, faces


def join(parts) -> tuple[np.ndarray, list]:
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces += [tuple(i + offset for i in face) for face in f]
        offset += len(v)
    return np.vstack(verts), faces


def footprint(verts: np.ndarray) -> float:
    """Radius of the circle around the origin (in XY) that holds the mesh."""
    return float(np.sqrt((verts[:, :2] ** 2).sum(1)).max())


# ------------------------------------------------------------------------------------------ materials


def _hsv(h, s, v):
    """A colour picked in sRGB (as people pick colours), returned linear (what a renderer's albedo is)."""
    srgb = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return tuple(float(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4) for c in srgb)


def object_material(rng: np.random.Generator) -> Material:
    """A varied principled material for a foreground object: plastic, painted, metal, ceramic, patterned."""
    color = _hsv(rng.uniform(), rng.uniform(0.15, 0.85), rng.uniform(0.25, 0.9))
    metallic = 1.0 if rng.uniform() < 0.2 else 0.0
    roughness = rng.uniform(0.15, 0.5) if metallic else rng.uniform(0.1, 0.9)
    coat = rng.uniform(0.0, 1.0) if rng.uniform() < 0.25 else 0.0
    texture = None
    if rng.uniform() < 0.35:
        texture = str(rng.choice(["noise", "checker", "wave", "voronoi"]))
    color2 = _hsv(rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))
    return Material(color, roughness, metallic, coat, texture, color2, rng.uniform(2.0, 8.0))


def ground_material(rng: np.random.Generator) -> Material:
    kind = rng.choice(["grass", "earth", "concrete", "sand", "tiles", "asphalt"])
    base = {
        "grass": (rng.uniform(0.2, 0.32), rng.uniform(0.4, 0.7), rng.uniform(0.25, 0.5)),
        "earth": (rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.45)),
        "concrete": (rng.uniform(0, 1), rng.uniform(0.0, 0.1), rng.uniform(0.45, 0.65)),
        "sand": (rng.uniform(0.09, 0.13), rng.uniform(0.25, 0.45), rng.uniform(0.55, 0.75)),
        "tiles": (rng.uniform(0, 1), rng.uniform(0.05, 0.4), rng.uniform(0.4, 0.7)),
        "asphalt": (rng.uniform(0, 1), rng.uniform(0.0, 0.05), rng.uniform(0.18, 0.3)),
    }[str(kind)]
    color = _hsv(*base)
    color2 = _hsv(base[0] + rng.uniform(-0.05, 0.05), base[1] * rng.uniform(0.6, 1.2), base[2] * rng.uniform(0.55, 0.85))
    texture = {"tiles": str(rng.choice(["checker", "brick"]))}.get(str(kind), "noise")
    scale = rng.uniform(1.5, 5.0) if texture == "noise" else rng.uniform(0.5, 1.2)
    return Material(color, rng.uniform(0.6, 0.95), 0.0, 0.0, texture, color2, scale)


def backdrop_material(rng: np.random.Generator) -> Material:
    if rng.uniform() < 0.35:  # brick
        color = _hsv(rng.uniform(0.0, 0.07), rng.uniform(0.4, 0.7), rng.uniform(0.35, 0.6))
        return Material(color, 0.85, 0.0, 0.0, "brick", _hsv(0.1, 0.1, rng.uniform(0.6, 0.8)), rng.uniform(1.5, 3.0))
    color = _hsv(rng.uniform(), rng.uniform(0.0, 0.35), rng.uniform(0.35, 0.8))
    color2 = _hsv(rng.uniform(), rng.uniform(0.0, 0.2), rng.uniform(0.3, 0.7))
    texture = str(rng.choice(["noise", "noise", "wave", "voronoi"])) if rng.uniform() < 0.7 else None
    return Material(color, rng.uniform(0.5, 0.95), 0.0, 0.0, texture, color2, rng.uniform(0.5, 3.0))


# ------------------------------------------------------------------------------------------ objects


def _vase(rng):
    h = rng.uniform(0.35, 0.9)
    base = rng.uniform(0.08, 0.18)
    bumps = rng.uniform(-0.5, 0.6, 3)
    zs = np.linspace(0, h, 14)
    r = base * (1 + bumps[0] * np.sin(np.pi * zs / h) + bumps[1] * np.sin(2 * np.pi * zs / h + 1) * 0.4
                + bumps[2] * (zs / h) ** 2 * 0.6)
    r = np.clip(r, 0.03, 0.35)
    return lathe(list(zip(r, zs)), 32, cap_bottom=True, cap_top=False), True, 0.0


def _bottle(rng):
    h = rng.uniform(0.3, 0.75)
    r = rng.uniform(0.05, 0.12)
    shoulder = rng.uniform(0.5, 0.7) * h
    neck = rng.uniform(0.25, 0.45) * r
    profile = [(r * 0.92, 0), (r, 0.02 * h), (r, shoulder), (r * 0.7, shoulder + 0.07 * h), (neck, shoulder + 0.16 * h),
               (neck, h * 0.97), (neck * 1.15, h)]
    return lathe(profile, 32, cap_bottom=True, cap_top=True), True, 0.0


def _table(rng):
    w, d, h = rng.uniform(0.6, 1.3), rng.uniform(0.5, 0.9), rng.uniform(0.45, 0.8)
    top, leg = rng.uniform(0.03, 0.07), rng.uniform(0.04, 0.07)
    parts = [box(w, d, top, (0, 0, h - top))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(box(leg, leg, h - top, (sx * (w / 2 - leg), sy * (d / 2 - leg), 0)))
    return join(parts), False, min(top, leg) * 0.3


def _chair(rng):
    w, seat_h, back_h = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.5), rng.uniform(0.35, 0.55)
    t, leg = 0.05, rng.uniform(0.035, 0.05)
    parts = [box(w, w, t, (0, 0, seat_h - t)), box(w, t, back_h, (0, w / 2 - t / 2, seat_h))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(box(leg, leg, seat_h - t, (sx * (w / 2 - leg), sy * (w / 2 - leg), 0)))
    return join(parts), False, 0.012


def _cabinet(rng):
    w, d, h = rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.6), rng.uniform(0.3, 1.0)
    parts = [box(w, d, h)]
    if rng.uniform() < 0.6:  # a smaller box on top, or a plinth
        parts.append(box(w * rng.uniform(0.4, 0.8), d * rng.uniform(0.4, 0.8), rng.uniform(0.1, 0.3), (0, 0, h)))
    return join(parts), False, rng.uniform(0.01, 0.04)


def _blob(rng):
    waves = [(rng.normal(size=3), rng.uniform(1.0, 3.5), rng.uniform(0, 2 * math.pi), rng.uniform(0.05, 0.18)) for _ in range(4)]

    def displace(dirs):
        out = np.ones(len(dirs))
        for axis, freq, phase, amp in waves:
            out += amp * np.sin(freq * dirs @ (axis / np.linalg.norm(axis)) * math.pi + phase)
        return out

    size = rng.uniform(0.18, 0.4)
    v, f = sphere(size, 20, 40, displace=displace)
    v[:, 2] *= rng.uniform(0.6, 1.4)
    v[:, 2] -= v[:, 2].min()
    return (v, f), True, 0.0


def _figurine(rng):
    h = rng.uniform(0.5, 1.0)
    s = h / 1.0
    leg_h, body_h = 0.42 * s, 0.36 * s
    hip = 0.07 * s
    parts = [cylinder(0.045 * s, leg_h, 16, (-hip, 0, 0)), cylinder(0.045 * s, leg_h, 16, (hip, 0, 0))]
    body_r = rng.uniform(0.11, 0.16) * s
    parts.append(lathe([(body_r * 0.9, 0), (body_r, body_h * 0.3), (body_r * 1.05, body_h * 0.75), (body_r * 0.5, body_h),
                        (0.04 * s, body_h * 1.04)], 24, cap_bottom=True, cap_top=True, center=(0, 0, leg_h)))
    for side in (-1, 1):
        parts.append(cylinder(0.035 * s, body_h * 0.85, 12, (side * (body_r + 0.04 * s), 0, leg_h + body_h * 0.1)))
    parts.append(sphere(0.09 * s, 10, 20, (0, 0, leg_h + body_h + 0.1 * s)))
    return join(parts), True, 0.0


def _suzanne(rng):
    return (None, []), True, 0.0


_BUILDERS = {"vase": _vase, "bottle": _bottle, "table": _table, "chair": _chair, "cabinet": _cabinet, "blob": _blob,
             "figurine": _figurine, "suzanne": _suzanne}
# Suzanne at scale 1 after blender.py's normalisation: 1 m tall, about 0.8 m wide.
SUZANNE_FOOTPRINT = 0.55


# ------------------------------------------------------------------------------------------ scene


def make_scene(name: str, rng: np.random.Generator, *, max_objects: int = 3) -> Scene:
    """A random scene: ground, backdrop, clutter, 1..max_objects foreground objects and a camera that sees them."""
    scene = Scene(name)
    ground_v, ground_f = box(400.0, 400.0, 0.0)
    scene.meshes.append(Mesh("ground", "ground", ground_v[:4], [(0, 1, 3, 2)], ground_material(rng)))

    # Foreground objects near the origin, not overlapping.
    count = int(rng.integers(1, max_objects + 1))
    placed: list[tuple[float, float, float]] = []  # x, y, radius
    for k in range(count):
        kind = str(rng.choice(FOREGROUND_KINDS))
        (verts, faces), smooth, bevel = _BUILDERS[kind](rng)
        scale = rng.uniform(0.35, 0.6) if kind == "suzanne" else 1.0
        radius = SUZANNE_FOOTPRINT * scale if verts is None else footprint(verts)
        for _ in range(50):
            spread = 0.25 + 0.45 * len(placed)
            x, y = rng.uniform(-spread, spread, 2)
            if all(math.hypot(x - px, y - py) > radius + pr + 0.05 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((x, y, radius))
        scene.meshes.append(Mesh(f"fg{k}", kind, verts, faces, object_material(rng), (x, y, 0.0), rng.uniform(0, 2 * math.pi),
                                 scale, smooth, bevel, foreground=True))
    cx = float(np.mean([p[0] for p in placed]))
    cy = float(np.mean([p[1] for p in placed]))
    group_r = max(math.hypot(px - cx, py - cy) + pr for px, py, pr in placed)

    # Camera on a circle around the group, a little above it, far enough to frame it.
    azimuth = rng.uniform(0, 2 * math.pi)
    lens = rng.uniform(28.0, 55.0)
    half_fov = math.atan(18.0 / lens)
    dist = max(group_r + 0.3, 0.5) / math.tan(half_fov) * rng.uniform(0.8, 1.2)
    height = rng.uniform(0.4, 1.8)
    cam = (cx + dist * math.cos(azimuth), cy + dist * math.sin(azimuth), height)
    target = (cx + rng.uniform(-0.15, 0.15), cy + rng.uniform(-0.15, 0.15), rng.uniform(0.25, 0.5))
    scene.camera = Camera(cam, target, lens)
    view = np.array([cx - cam[0], cy - cam[1]])
    view /= np.linalg.norm(view)
    side = np.array([-view[1], view[0]])

    # Walls behind the group (seen from the camera), turned a little.
    for _ in range(int(rng.integers(1, 4))):
        w, t, h = rng.uniform(3.0, 10.0), rng.uniform(0.2, 0.4), rng.uniform(1.5, 4.0)
        back, lateral = rng.uniform(2.5, 8.0), rng.uniform(-4.0, 4.0)
        pos = np.array([cx, cy]) + view * back + side * lateral
        v, f = box(w, t, h)
        rot = math.atan2(view[1], view[0]) + math.pi / 2 + rng.uniform(-0.7, 0.7)
        scene.meshes.append(Mesh(f"wall{len(scene.meshes)}", "wall", v, f, backdrop_material(rng), (float(pos[0]), float(pos[1]), 0.0),
                                 rot, 1.0, False, 0.02))

    # Clutter around (blocks, pillars, balls); only sometimes between the camera and the objects.
    for _ in range(int(rng.integers(3, 9))):
        kind = str(rng.choice(["block", "pillar", "ball"]))
        size = rng.uniform(0.2, 1.2)
        if kind == "block":
            (v, f), smooth, bevel = box(size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.5), size * rng.uniform(0.3, 1.0)), False, 0.02
        elif kind == "pillar":
            (v, f), smooth, bevel = cylinder(size * rng.uniform(0.1, 0.3), size * rng.uniform(1.0, 3.0), 20), True, 0.0
        else:
            (v, f), smooth, bevel = sphere(size * 0.4, 12, 24, (0, 0, size * 0.4)), True, 0.0
        r = footprint(v)
        for _ in range(30):
            a, d = rng.uniform(0, 2 * math.pi), rng.uniform(group_r + 0.4 + r, 8.0)
            x, y = cx + d * math.cos(a), cy + d * math.sin(a)
            toward_camera = np.dot(np.array([x - cx, y - cy]), -view)
            lateral = abs(np.dot(np.array([x - cx, y - cy]), side))
            blocks_view = 0 < toward_camera < dist and lateral < group_r + r + 0.3
            if not blocks_view or rng.uniform() < 0.15:
                break
        mat = backdrop_material(rng) if rng.uniform() < 0.5 else object_material(rng)
        scene.meshes.append(Mesh(f"clutter{len(scene.meshes)}", kind, v, f, mat, (float(x), float(y), 0.0), rng.uniform(0, 2 * math.pi),
                                 1.0, smooth, bevel))
    return scene
