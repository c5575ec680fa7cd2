"""Render the synthetic example inputs: ``fg.png``, ``bg.jpg`` and ``mask.png`` (640 x 427) beside this file.

The background is an evening landscape: a sky gradient with a low warm sun on the left, hills and a textured
meadow. The foreground "photo" is a striped ball shot in a cool, dim studio and lit from the right: wrong
colour, wrong brightness and wrong light direction for the landscape, which is what ``harmcli harmonize``
corrects. The mask selects the ball with an anti-aliased edge. Everything is procedural (no photos) and
seeded, so running the script again gives the same files::

    python examples/make_example.py
    harmcli harmonize examples/fg.png examples/bg.jpg examples/mask.png -o harmonized.png
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 427
HORIZON = 0.62  # fraction of the height where the ground starts
SUN = (0.18, 0.42)  # sun position as fractions of width and height
BALL = (0.63, 0.66, 0.19)  # centre x, centre y (fractions of width/height) and radius (fraction of height)


def _lerp(a, b, t):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a + (b - a) * np.asarray(t, np.float32)[..., None]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    """Value noise in [-1, 1]: random values on a coarse grid, upsampled smoothly."""
    coarse = rng.uniform(-1.0, 1.0, (shape[0] // scale + 2, shape[1] // scale + 2)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def render_background(rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 linear-ish RGB in [0, 1]."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    u, v = xx / WIDTH, yy / HEIGHT
    # Sky: deep blue at the top to a warm haze at the horizon.
    t_sky = np.clip(v / HORIZON, 0, 1) ** 1.3
    sky = _lerp((0.16, 0.32, 0.62), (0.98, 0.78, 0.55), t_sky)
    # Sun: a bright core and a wide warm glow.
    d = np.hypot((u - SUN[0]) * WIDTH / HEIGHT, v - SUN[1])
    glow = 0.55 * np.exp(-((d / 0.22) ** 2)) + 0.9 * np.exp(-((d / 0.035) ** 2))
    sky = sky + glow[..., None] * np.array([1.0, 0.82, 0.55], np.float32)
    # Thin clouds catching the light.
    clouds = np.clip(_smooth_noise(rng, (HEIGHT, WIDTH), 48) * 0.8 + 0.1 * _smooth_noise(rng, (HEIGHT, WIDTH), 12), 0, 1)
    sky = sky + (clouds * (1 - t_sky) * 0.25)[..., None] * np.array([1.0, 0.9, 0.85], np.float32)

    # Hills: two soft ridges above the horizon line.
    ridge_far = HORIZON - 0.06 - 0.035 * np.sin(u * 5.0 + 0.7) - 0.02 * np.sin(u * 11.0)
    ridge_near = HORIZON - 0.015 - 0.03 * np.sin(u * 3.1 + 2.0)
    image = sky
    image = np.where((v > ridge_far)[..., None], _lerp((0.42, 0.38, 0.50), (0.55, 0.45, 0.45), u * 0.5), image)
    image = np.where((v > ridge_near)[..., None], _lerp((0.30, 0.34, 0.25), (0.38, 0.36, 0.24), u), image)

    # Meadow: green-gold, brighter towards the sun, darker in front, with grass texture.
    t_ground = np.clip((v - HORIZON) / (1 - HORIZON), 0, 1)
    ground = _lerp((0.55, 0.55, 0.22), (0.20, 0.30, 0.10), t_ground)
    ground *= (1.0 + 0.35 * np.exp(-(((u - SUN[0]) / 0.35) ** 2)) * (1 - t_ground))[..., None]
    fine = rng.uniform(-1, 1, (HEIGHT // 2, WIDTH)).astype(np.float32)
    fine = cv2.resize(fine, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    fine = cv2.GaussianBlur(fine, (0, 0), sigmaX=0.6, sigmaY=1.6)  # blades: taller than wide
    grass = 0.10 * fine + 0.06 * _smooth_noise(rng, (HEIGHT, WIDTH), 24)
    ground = ground * (1.0 + grass)[..., None]
    image = np.where((v > HORIZON)[..., None], ground, image)
    return np.clip(image, 0, 1)


def ball_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance to the ball's edge (pixels, negative inside) and the sphere normal (nx, ny, nz)."""
    cx, cy, r = BALL[0] * WIDTH, BALL[1] * HEIGHT, BALL[2] * HEIGHT
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    nx, ny = (xx - cx) / r, (yy - cy) / r
    rho = np.hypot(nx, ny)
    nz = np.sqrt(np.clip(1 - rho**2, 0, 1))
    return (rho - 1.0) * r, nx, ny, nz


def render_foreground(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The studio shot (H, W, 3) float32 and the ball's soft mask (H, W) float32."""
    dist, nx, ny, nz = ball_geometry()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    # Studio backdrop: a cool grey sweep.
    backdrop = _lerp((0.42, 0.45, 0.52), (0.22, 0.24, 0.30), yy / HEIGHT)
    backdrop *= (1.0 - 0.25 * ((xx / WIDTH - 0.5) ** 2))[..., None]

    # Beach-ball segments meeting at a pole tilted towards the camera: the colours make casts easy to see.
    tilt, turn = np.deg2rad(35.0), np.deg2rad(20.0)
    y1 = ny * np.cos(tilt) - nz * np.sin(tilt)  # rotate about x so the top pole faces the camera a little
    z1 = ny * np.sin(tilt) + nz * np.cos(tilt)
    lon = np.arctan2(z1, nx) + turn
    stripe = np.floor((lon / np.pi + 1.0) * 6.0).astype(np.int32) % 6  # 12 segments, 6 facing the camera
    pole = -y1 > 0.93  # the white cap at the top
    palette = np.array(
        [(0.92, 0.22, 0.18), (0.96, 0.92, 0.88), (0.20, 0.45, 0.85)] + [(0.96, 0.92, 0.88), (0.98, 0.78, 0.15), (0.96, 0.92, 0.88)],
        np.float32,
    )
    albedo = np.where(pole[..., None], np.float32(0.95), palette[stripe])
    # Lit from the upper right by a cold softbox (the landscape's sun is on the left).
    light = np.array([0.65, -0.45, 0.61], np.float32)
    light /= np.linalg.norm(light)
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1)
    shade = 0.12 + 0.88 * lambert
    spec = np.clip(nx * 0.45 + ny * -0.35 + nz * 0.82, 0, 1) ** 40
    ball = albedo * shade[..., None] + 0.5 * spec[..., None]
    # The shot is too dark and too blue for the scene.
    ball = ball * np.array([0.55, 0.62, 0.85], np.float32) + np.array([0.0, 0.01, 0.05], np.float32)

    mask = np.clip(0.5 - dist, 0.0, 1.0)  # one-pixel anti-aliased edge
    image = backdrop + mask[..., None] * (np.clip(ball, 0, 1) - backdrop)
    return image, mask


def to_bgr8(image: np.ndarray) -> np.ndarray:
    srgb = np.clip(image, 0, 1) ** (1 / 1.1)  # a gentle tone curve so the gradients read well
    return cv2.cvtColor(np.rint(srgb * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def main(folder: Path | None = None) -> list[Path]:
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    background = render_background(rng)
    foreground, mask = render_foreground(rng)
    outputs = [folder / "bg.jpg", folder / "fg.png", folder / "mask.png"]
    cv2.imwrite(str(outputs[0]), to_bgr8(background), [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(outputs[1]), to_bgr8(foreground), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    cv2.imwrite(str(outputs[2]), np.rint(mask * 255).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return outputs


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
