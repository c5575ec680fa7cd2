"""The ten lighting styles of the rendered data (paper 2, §3), each a *range* that a seed samples from.

Three weathers (clear, partly cloudy, cloudy) × three times of day (sunrise/sunset, noon, other times), plus
night. Every style is described here in plain numbers (no ``bpy``): :func:`sample_style` draws one
:class:`Lighting` for a scene, and :mod:`harmcli.render.blender` turns it into a world, a sun lamp and lamps.

Units. ``sun_strength`` is the sun's irradiance at normal incidence (Blender's sun strength, W/m²) and the sky
levels are the *horizontal* irradiance the sky alone gives (its luminance, before colour). The numbers are
chosen for the AgX view transform at exposure 0: a mid-grey ground in noon sun lands near the middle of the
display range, and a white one stays below clipping. The physical sky model is only used for its *colour and
shape*; its level is set from these numbers (the model's own level, near 10 on the same scale, would need a
camera exposure that changes with every sky). Each style sets an exposure offset like a photographer would:
overcast and night frames are brightened, not left grey or black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

STYLES = (
    "clear_sunrise_sunset",
    "clear_noon",
    "clear_other",
    "partly_cloudy_sunrise_sunset",
    "partly_cloudy_noon",
    "partly_cloudy_other",
    "cloudy_sunrise_sunset",
    "cloudy_noon",
    "cloudy_other",
    "night",
)

# Short labels for the contact sheet.
SHORT_NAMES = {
    "clear_sunrise_sunset": "clear dawn/dusk",
    "clear_noon": "clear noon",
    "clear_other": "clear day",
    "partly_cloudy_sunrise_sunset": "p.cloudy dawn/dusk",
    "partly_cloudy_noon": "p.cloudy noon",
    "partly_cloudy_other": "p.cloudy day",
    "cloudy_sunrise_sunset": "cloudy dawn/dusk",
    "cloudy_noon": "cloudy noon",
    "cloudy_other": "cloudy day",
    "night": "night",
}

# Sun elevation (degrees) of each time of day.
ELEVATION = {"sunrise_sunset": (0.5, 8.0), "noon": (55.0, 80.0), "other": (15.0, 45.0)}

# HDR environment maps shipped with Blender (datafiles/studiolights/world) that fit a style, used for a share of
# the scenes so the skies are not all from one model. Their light is rescaled to the style's level.
HDRS = {
    "clear_sunrise_sunset": ("sunrise.exr", "sunset.exr"),
    "clear_other": ("courtyard.exr", "forest.exr"),
    "cloudy_other": ("city.exr",),
    "night": ("night.exr",),
}
HDR_SHARE = 0.35

# Horizontal irradiance (RGB) of Blender's sky models at strength 1, with no sun disc, by sun elevation (degrees).
# Measured here by rendering a white diffuse plane lit by the sky alone (64 samples, 16x16 px); used to scale a
# sky to the level a style asks for. MULTIPLE_SCATTERING at default air/aerosol/ozone; HOSEK_WILKIE by turbidity.
_ELEVATIONS = (0, 1, 2, 4, 7, 10, 15, 20, 30, 45, 60, 75, 90)
MULTIPLE_SCATTERING_IRRADIANCE = (
    (1.2268, 1.2969, 1.9070), (1.7244, 1.9638, 2.7430), (2.1862, 2.6897, 3.7233), (2.9732, 4.1189, 5.9339),
    (3.8855, 5.9373, 9.2352), (4.5701, 7.3266, 11.9719), (5.4017, 8.9578, 15.1664), (6.0105, 10.1082, 17.3532),
    (6.9001, 11.7676, 20.4862), (7.8397, 13.5204, 23.8118), (8.4872, 14.7313, 26.1153), (8.8697, 15.4577, 27.5108),
    (8.9963, 15.7001, 27.9789),
)
HOSEK_WILKIE_IRRADIANCE = {
    2.0: ((0.0354, 0.0331, 0.0261), (0.045, 0.0464, 0.0394), (0.052, 0.0588, 0.0558), (0.0621, 0.0795, 0.0883),
          (0.0735, 0.1035, 0.131), (0.0823, 0.1222, 0.1672), (0.0937, 0.1463, 0.2169), (0.1024, 0.1651, 0.2577),
          (0.1135, 0.1922, 0.3229), (0.1201, 0.2152, 0.3913), (0.1281, 0.2284, 0.4291), (0.1423, 0.2437, 0.446),
          (0.144, 0.2623, 0.4572)),
    3.5: ((0.0342, 0.031, 0.0253), (0.0467, 0.0452, 0.0384), (0.0576, 0.06, 0.0552), (0.0747, 0.086, 0.0886),
          (0.0945, 0.1168, 0.1329), (0.1101, 0.1408, 0.1708), (0.1302, 0.1726, 0.2245), (0.146, 0.1981, 0.2701),
          (0.1686, 0.2369, 0.3455), (0.1823, 0.2724, 0.4273), (0.1836, 0.2918, 0.475), (0.1946, 0.3056, 0.4917),
          (0.2223, 0.3208, 0.482)),
    5.0: ((0.0311, 0.0287, 0.0243), (0.0456, 0.0431, 0.037), (0.0611, 0.0603, 0.0539), (0.0871, 0.0918, 0.0887),
          (0.1178, 0.1302, 0.1349), (0.1421, 0.1612, 0.1748), (0.1745, 0.2029, 0.2324), (0.2008, 0.2375, 0.2836),
          (0.2395, 0.293, 0.3741), (0.2655, 0.3472, 0.479), (0.2705, 0.3746, 0.5385), (0.2812, 0.3891, 0.5506),
          (0.3195, 0.4066, 0.5166)),
}
LUMA = np.array([0.2126, 0.7152, 0.0722])


def _table_luminance(table, elevation_deg: float) -> float:
    return float(np.interp(elevation_deg, _ELEVATIONS, [float(LUMA @ np.array(rgb)) for rgb in table]))


def sky_luminance(elevation_deg: float, model: str = "MULTIPLE_SCATTERING", turbidity: float = 3.5) -> float:
    """Horizontal irradiance (luminance) of a strength-1 sky model at this sun elevation."""
    if model == "MULTIPLE_SCATTERING":
        return _table_luminance(MULTIPLE_SCATTERING_IRRADIANCE, elevation_deg)
    keys = sorted(HOSEK_WILKIE_IRRADIANCE)
    values = [_table_luminance(HOSEK_WILKIE_IRRADIANCE[k], elevation_deg) for k in keys]
    return float(np.interp(turbidity, keys, values))


def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear RGB of a black body at ``kelvin`` (a fit to the CIE colours, good to a few percent from 1500 to
    15000 K), scaled to luminance 1 so a colour never changes a light's level."""
    t = kelvin / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * math.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = linear / float(LUMA @ linear)
    return tuple(float(v) for v in linear)


@dataclass
class Sun:
    elevation: float  # degrees above the horizon
    azimuth: float  # degrees around +Z
    strength: float  # irradiance at normal incidence
    angle: float  # angular diameter, degrees (softness of the shadows)
    color: tuple[float, float, float]


@dataclass
class Lamp:
    """A point lamp (night: street lights, windows)."""

    location: tuple[float, float, float]
    power: float  # watts
    radius: float
    color: tuple[float, float, float]


@dataclass
class Lighting:
    """Everything one style of one scene needs; see :func:`sample_style`."""

    style: str
    world: str  # sky | overcast | hdr
    level: float  # horizontal irradiance (luminance) of the world alone
    sun: Sun | None
    exposure: float  # stops
    # sky: the sky model's sun (same direction as ``sun``) and its haze
    sky_elevation: float = 0.0
    sky_azimuth: float = 0.0
    sky_model: str = "MULTIPLE_SCATTERING"  # or HOSEK_WILKIE
    aerosol: float = 1.0  # MULTIPLE_SCATTERING haze
    turbidity: float = 3.0  # HOSEK_WILKIE haze
    # clouds over the sky model: coverage 0..1 (0 = none), their scale, brightness and tint
    clouds: float = 0.0
    cloud_scale: float = 1.0
    cloud_brightness: float = 1.0
    cloud_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    cloud_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # overcast: colour of the zenith
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # hdr: file name in Blender's studiolights/world and its rotation about Z (degrees)
    hdr: str | None = None
    hdr_rotation: float = 0.0
    lamps: list[Lamp] = field(default_factory=list)


def _time_of(style: str) -> str:
    for time in ("sunrise_sunset", "noon", "other"):
        if style.endswith(time):
            return time
    return "night"


def _sky_model(low_sun: bool) -> str:
    """Blender's multiple-scattering sky for a low sun (its twilight colours are the reason to use it), the
    Hosek-Wilkie model otherwise: the former costs 0.4 to 0.9 s of tables per world change on this CPU, the
    latter 0.04 s, and above 10 degrees they look alike."""
    return "MULTIPLE_SCATTERING" if low_sun else "HOSEK_WILKIE"


def _sun_kelvin(elevation: float, rng: np.random.Generator) -> float:
    # Low sun light crosses more air: about 2000 K at the horizon, near 5800 K above 40 degrees.
    return 2000.0 + 3800.0 * (1.0 - math.exp(-max(elevation, 0.0) / 14.0)) + rng.uniform(-250, 250)


def sample_style(style: str, rng: np.random.Generator, *, center: tuple[float, float] = (0.0, 0.0)) -> Lighting:
    """Draw one lighting of ``style``. ``center``: where the foreground stands (the night lamps go around it)."""
    if style not in STYLES:
        raise ValueError(f"unknown style '{style}'")
    time = _time_of(style)
    azimuth = rng.uniform(0.0, 360.0)
    if style == "night":
        moon_el = rng.uniform(15.0, 60.0)
        moon = Sun(moon_el, azimuth, rng.uniform(0.1, 0.3), 0.5, kelvin_to_rgb(rng.uniform(7000, 10000)))
        lamps = []
        for _ in range(int(rng.integers(1, 3))):
            a, r = rng.uniform(0, 2 * math.pi), rng.uniform(2.0, 4.5)
            lamps.append(Lamp((center[0] + r * math.cos(a), center[1] + r * math.sin(a), rng.uniform(2.2, 3.5)),
                              rng.uniform(25.0, 90.0), rng.uniform(0.05, 0.25), kelvin_to_rgb(rng.uniform(2400, 3400))))
        return Lighting(style, "hdr", rng.uniform(0.08, 0.16), moon, rng.uniform(0.6, 1.0), hdr=str(rng.choice(HDRS["night"])),
                        hdr_rotation=rng.uniform(0, 360), lamps=lamps)

    elevation = rng.uniform(*ELEVATION[time])
    weather = style[: -len(time) - 1]
    kelvin = _sun_kelvin(elevation, rng)
    low = time == "sunrise_sunset"
    if weather in ("clear", "partly_cloudy") and style in HDRS and rng.uniform() < HDR_SHARE:
        # An HDR photo of a real sky: its own sun and colours, scaled to the style's level.
        level = rng.uniform(0.9, 1.3) if low else rng.uniform(2.2, 3.0)
        return Lighting(style, "hdr", level, None, rng.uniform(-0.2, 0.2) + (0.3 if low else 0.0),
                        hdr=str(rng.choice(HDRS[style])), hdr_rotation=rng.uniform(0, 360))
    if weather == "clear":
        strength = rng.uniform(1.8, 2.6) if low else rng.uniform(2.8, 3.6)
        sky = rng.uniform(0.35, 0.55) if low else rng.uniform(0.55, 0.85)
        sun = Sun(elevation, azimuth, strength, rng.uniform(0.5, 1.2), kelvin_to_rgb(kelvin))
        return Lighting(style, "sky", sky, sun, rng.uniform(-0.25, 0.15) + (0.25 if low else 0.0), sky_elevation=elevation,
                        sky_azimuth=azimuth, sky_model=_sky_model(low), aerosol=rng.uniform(1.0, 4.0), turbidity=rng.uniform(2.0, 3.5))
    if weather == "partly_cloudy":
        # Clouds dim and soften the sun and add their own (whiter) light.
        strength = (rng.uniform(1.8, 2.6) if low else rng.uniform(2.8, 3.6)) * rng.uniform(0.35, 0.8)
        sky = (rng.uniform(0.35, 0.55) if low else rng.uniform(0.55, 0.85)) * rng.uniform(1.3, 1.8)
        sun = Sun(elevation, azimuth, strength, rng.uniform(2.0, 6.0), kelvin_to_rgb(kelvin + 300))
        warm = np.array(kelvin_to_rgb(kelvin)) if low else np.ones(3)
        tint = tuple(float(v) for v in 0.5 * warm + 0.5)
        return Lighting(style, "sky", sky, sun, rng.uniform(-0.15, 0.2) + (0.3 if low else 0.0), sky_elevation=elevation,
                        sky_azimuth=azimuth, sky_model=_sky_model(low), aerosol=rng.uniform(1.0, 3.0), turbidity=rng.uniform(3.0, 5.0),
                        clouds=rng.uniform(0.35, 0.65),
                        cloud_scale=rng.uniform(0.6, 1.6), cloud_brightness=rng.uniform(0.8, 1.3) * (0.7 if low else 1.0),
                        cloud_tint=tint, cloud_offset=tuple(float(v) for v in rng.uniform(-100, 100, 3)))
    # cloudy: an overcast dome (brighter at the zenith), a faint, very soft sun behind it.
    if style in HDRS and rng.uniform() < HDR_SHARE:
        return Lighting(style, "hdr", rng.uniform(1.4, 2.0), None, rng.uniform(0.2, 0.5), hdr=str(rng.choice(HDRS[style])),
                        hdr_rotation=rng.uniform(0, 360))
    level = {"sunrise_sunset": rng.uniform(0.45, 0.75), "noon": rng.uniform(1.4, 2.0), "other": rng.uniform(1.0, 1.5)}[time]
    if low:  # blue hour under clouds, a little warmth left near the sun
        tint = kelvin_to_rgb(rng.uniform(7000, 9500))
    else:
        tint = kelvin_to_rgb(rng.uniform(6200, 7200))
    sun = Sun(elevation, azimuth, level * rng.uniform(0.1, 0.3), rng.uniform(20.0, 40.0), kelvin_to_rgb(kelvin + 800))
    return Lighting(style, "overcast", level, sun, rng.uniform(0.25, 0.55), tint=tint,
                    cloud_offset=tuple(float(v) for v in rng.uniform(-100, 100, 3)))


def style_label(fg_style: str, bg_style: str, fg_fraction: float) -> list[float]:
    """The soft style label of a composite (paper 2, §3): the foreground's and the background's one-hot labels
    mixed by the share of the image each covers. A target (fg_style == bg_style) gets a one-hot label."""
    label = [0.0] * len(STYLES)
    label[STYLES.index(fg_style)] += fg_fraction
    label[STYLES.index(bg_style)] += 1.0 - fg_fraction
    return label
