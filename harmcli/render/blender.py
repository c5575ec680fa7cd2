"""Blender (``bpy``) behind one small class: the only module of harmcli that imports ``bpy``.

:class:`BlenderRenderer` builds a :class:`~harmcli.render.scenes.Scene` through ``bpy.data`` (no operators, no
UI context: faster and independent of what is selected), lights it with a :class:`~harmcli.render.styles.Lighting`
and renders it with Cycles. Why each setting, measured on the 2-core CPU this was written on:

* **Persistent data.** The ten styles of a scene differ only in the world and the lamps, so Cycles keeps the
  geometry (BVH) between renders (``render.use_persistent_data``); a repeated render of a 16x16 frame fell from
  2.3 s to 0.05 s.
* **Small world importance map.** Cycles rebuilds the world's light-sampling map whenever the world changes; at
  its automatic resolution that took 2.2 s per style. A 256-pixel map costs 0.02 s (plus 0.4 s for the
  multiple-scattering sky's own tables) and samples a sky without a sun disc just as well: the sun is a lamp.
* **Masks in one render for three objects.** Each foreground object gets a pure emission colour (red, green or
  blue), every other object is a holdout, the film is transparent and there is no bounce: the linear EXR then
  holds each object's anti-aliased, occlusion-aware coverage in its own channel, filtered by the same pixel
  filter as the beauty renders. Adaptive sampling (up to 256 samples, camera rays only) spends them on the edge pixels: 2 s for three objects at
  256 px, mean error 0.6/255 on edge pixels against 512 uniform samples (64 uniform: 2.4/255, also 2 s). (A Cryptomatte pass would
  come with the beauty render, but only at its 16 samples, and needs an EXR layer reader and hash decoding.)
* **8-bit PNG straight from Blender** with the AgX view transform: the frames are display-referred like photos;
  dithering is off (it would add noise of its own). A seed gives the same scenes, lights, masks and pairs, but
  Cycles is not bit-exact from one process to the next: one scene rendered in three fresh processes (64 px, 2
  samples, one thread) gave one frame of three styles different in one run, by up to 51 levels with the denoiser
  and 125 without (so not the denoiser, and not what an earlier scene left behind). Renders agree within the
  path tracer's noise, not byte for byte.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

import numpy as np

from harmcli.errors import DeviceError, HarmcliError
from harmcli.render.scenes import Camera, Material, Mesh, Scene
from harmcli.render.styles import Lighting, sky_luminance

INSTALL_HINT = "pip install bpy==5.0.1, harmcli's render extra (Blender's bpy: Python 3.11 and numpy<2, best in its own virtualenv; see the README)"


class MissingExtraError(HarmcliError):
    """An optional engine is not installed."""


def import_bpy():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import bpy  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"harmcli render needs Blender's bpy module, which is not installed ({exc}): {INSTALL_HINT}") from None
    return bpy


def bpy_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("bpy") is not None


@contextlib.contextmanager
def _quiet_stdout():
    """Cycles prints a progress line per tile to the process's stdout; keep it out of ours."""
    try:
        fd = os.dup(1)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


def _socket(collection, identifier):
    for item in collection:
        if item.identifier == identifier:
            return item
    raise KeyError(identifier)


class BlenderRenderer:
    """Renders scenes with Cycles at ``size`` x ``size``; one instance per process (bpy has one global state)."""

    def __init__(self, size: int, samples: int, *, device: str = "cpu", threads: int = 0, mask_samples: int = 256,
                 bounces: int = 3, denoise: bool = True):
        self.bpy = bpy = import_bpy()
        self.size, self.samples, self.mask_samples, self.denoise = size, samples, mask_samples, denoise
        self.mask_adaptive = True
        self.scene = scene = bpy.context.scene
        self._clear(everything=True)
        scene.render.engine = "CYCLES"
        scene.render.resolution_x = scene.render.resolution_y = size
        scene.render.resolution_percentage = 100
        scene.render.use_persistent_data = True
        scene.render.dither_intensity = 0.0
        scene.render.use_file_extension = False
        if threads:
            scene.render.threads_mode, scene.render.threads = "FIXED", threads
        cycles = scene.cycles
        cycles.use_adaptive_sampling = False
        cycles.max_bounces = bounces
        cycles.diffuse_bounces = min(bounces, 2)
        cycles.glossy_bounces = min(bounces, 2)
        cycles.transmission_bounces = 0
        cycles.volume_bounces = 0
        cycles.transparent_max_bounces = 2
        cycles.caustics_reflective = cycles.caustics_refractive = False
        cycles.blur_glossy = 1.0  # fewer fireflies from sharp reflections of small bright lamps
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        cycles.denoising_prefilter = "FAST"
        cycles.sample_clamp_indirect = 5.0
        # One sun, a world and at most two lamps: the light tree's bookkeeping costs more than it saves.
        cycles.use_light_tree = False
        self._set_device(device)
        scene.display_settings.display_device = "sRGB"
        self._suzanne = None
        self._hdr_images: dict[str, object] = {}
        self._hdr_irradiance: dict[str, float] = {}
        self.objects: list = []
        self.foreground: list = []
        self._style_lights: list = []

    # ------------------------------------------------------------------ setup

    def _set_device(self, device: str) -> None:
        cycles = self.scene.cycles
        if device == "cpu":
            cycles.device = "CPU"
            return
        prefs = self.bpy.context.preferences.addons["cycles"].preferences
        found = []
        for backend in ("OPTIX", "CUDA"):
            try:
                prefs.compute_device_type = backend
            except TypeError:
                continue
            prefs.get_devices()
            found = [d for d in prefs.devices if d.type == backend]
            if found:
                break
        if not found:
            if device == "auto":
                cycles.device = "CPU"
                return
            raise DeviceError(f"--device {device}: Cycles finds no CUDA/OptiX GPU here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else None
        for i, d in enumerate(found):
            d.use = index is None or i == index
        for d in prefs.devices:
            if d.type == "CPU":
                d.use = False
        cycles.device = "GPU"

    def _clear(self, everything: bool = False) -> None:
        data = self.bpy.data
        for obj in list(data.objects):
            data.objects.remove(obj)
        for coll in (data.meshes, data.materials, data.lights, data.cameras, data.worlds):
            for block in list(coll):
                if everything or not block.use_fake_user:
                    coll.remove(block)
        self.objects, self.foreground, self._style_lights = [], [], []

    def _suzanne_mesh(self):
        """Blender's monkey, made once with the one operator that has no data-API equivalent, normalised to
        1 m tall, centred, standing on z = 0."""
        if self._suzanne is None:
            bpy = self.bpy
            with _quiet_stdout():
                bpy.ops.mesh.primitive_monkey_add(size=1.0)
            obj = bpy.context.active_object
            mesh = obj.data
            bpy.data.objects.remove(obj)
            co = np.zeros(len(mesh.vertices) * 3)
            mesh.vertices.foreach_get("co", co)
            co = co.reshape(-1, 3)
            # Stand it upright facing -Y, 1 m tall.
            lo, hi = co.min(0), co.max(0)
            co = (co - [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]) / (hi[2] - lo[2])
            mesh.vertices.foreach_set("co", co.ravel())
            mesh.shade_smooth()
            mesh.use_fake_user = True
            mesh.name = "harmcli_suzanne"
            self._suzanne = mesh
        return self._suzanne

    # ------------------------------------------------------------------ scene

    def _material(self, spec: Material, name: str):
        mat = self.bpy.data.materials.new(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mat.use_nodes = True
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = nodes["Principled BSDF"]
        bsdf.inputs["Roughness"].default_value = spec.roughness
        bsdf.inputs["Metallic"].default_value = spec.metallic
        bsdf.inputs["Coat Weight"].default_value = spec.coat
        c1, c2 = (*spec.color, 1.0), (*spec.color2, 1.0)
        if spec.texture is None:
            bsdf.inputs["Base Color"].default_value = c1
            return mat
        coords = nodes.new("ShaderNodeTexCoord")
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = (spec.texture_scale,) * 3
        links.new(coords.outputs["Object"], mapping.inputs["Vector"])
        if spec.texture in ("checker", "brick"):
            tex = nodes.new("ShaderNodeTexChecker" if spec.texture == "checker" else "ShaderNodeTexBrick")
            links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
            tex.inputs["Color1"].default_value = c1
            tex.inputs["Color2"].default_value = tuple(0.5 * a + 0.5 * b for a, b in zip(c1, c2))
            if spec.texture == "brick":
                tex.inputs["Mortar"].default_value = c2
            links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
            return mat
        if spec.texture == "noise":
            tex = nodes.new("ShaderNodeTexNoise")
            tex.inputs["Detail"].default_value = 6.0
            fac = tex.outputs["Fac"]
        elif spec.texture == "wave":
            tex = nodes.new("ShaderNodeTexWave")
            tex.inputs["Distortion"].default_value = 2.0
            fac = tex.outputs["Fac"]
        else:
            tex = nodes.new("ShaderNodeTexVoronoi")
            fac = tex.outputs["Distance"]
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        ramp = nodes.new("ShaderNodeMapRange")  # stretch the texture's mid-range to full contrast
        ramp.inputs["From Min"].default_value, ramp.inputs["From Max"].default_value = 0.3, 0.7
        links.new(fac, ramp.inputs["Value"])
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        _socket(mix.inputs, "A_Color").default_value = c1
        _socket(mix.inputs, "B_Color").default_value = c2
        links.new(ramp.outputs["Result"], _socket(mix.inputs, "Factor_Float"))
        links.new(_socket(mix.outputs, "Result_Color"), bsdf.inputs["Base Color"])
        return mat

    def _mesh_object(self, spec: Mesh):
        bpy = self.bpy
        if spec.verts is None:
            mesh = self._suzanne_mesh()
        else:
            mesh = bpy.data.meshes.new(spec.name)
            mesh.from_pydata(spec.verts.tolist(), [], [tuple(f) for f in spec.faces])
            mesh.validate()
            if spec.smooth:
                # Quads (the sides) smooth, triangle fans (caps, poles) flat: no shading seam around a rim.
                flags = [len(p.vertices) == 4 for p in mesh.polygons]
                mesh.polygons.foreach_set("use_smooth", flags)
            mesh.update()
        obj = bpy.data.objects.new(spec.name, mesh)
        if not mesh.materials:
            mesh.materials.append(None)
        # Materials hang on the object, not the mesh: the mask pass swaps them per object, and the Suzanne
        # mesh is shared.
        obj.material_slots[0].link = "OBJECT"
        obj.material_slots[0].material = self._material(spec.material, spec.name)
        obj.location = spec.location
        obj.rotation_euler = (0.0, 0.0, spec.rotation_z)
        obj.scale = (spec.scale,) * 3
        if spec.bevel > 0:
            mod = obj.modifiers.new("bevel", "BEVEL")
            mod.width, mod.segments, mod.limit_method = spec.bevel, 2, "ANGLE"
        if spec.kind == "suzanne":
            mod = obj.modifiers.new("subdivision", "SUBSURF")
            mod.levels = mod.render_levels = 1
        self.scene.collection.objects.link(obj)
        return obj

    def _camera(self, spec: Camera):
        from mathutils import Vector

        bpy = self.bpy
        data = bpy.data.cameras.new("camera")
        data.lens, data.sensor_width, data.clip_start, data.clip_end = spec.lens, 36.0, 0.05, 2000.0
        cam = bpy.data.objects.new("camera", data)
        cam.location = spec.location
        cam.rotation_euler = (Vector(spec.target) - Vector(spec.location)).to_track_quat("-Z", "Y").to_euler()
        self.scene.collection.objects.link(cam)
        self.scene.camera = cam

    def build(self, scene: Scene) -> None:
        """Replace whatever was built before with ``scene``."""
        self._clear()
        for spec in scene.meshes:
            obj = self._mesh_object(spec)
            self.objects.append(obj)
            if spec.foreground:
                self.foreground.append(obj)
        self._camera(scene.camera)

    # ------------------------------------------------------------------ light

    def _hdr(self, name: str):
        if name not in self._hdr_images:
            path = Path(self.bpy.utils.system_resource("DATAFILES")) / "studiolights" / "world" / name
            if not path.is_file():
                raise HarmcliError(f"{path}: Blender's environment map is missing from this bpy install")
            image = self.bpy.data.images.load(str(path), check_existing=True)
            image.use_fake_user = True
            w, h = image.size
            px = np.empty(w * h * 4, dtype=np.float32)
            image.pixels.foreach_get(px)
            lum = px.reshape(h, w, 4)[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
            # Rows go bottom (-90 deg) to top (+90 deg); horizontal irradiance = sum L sin(el) cos(el) dEl dPhi.
            el = ((np.arange(h) + 0.5) / h - 0.5) * math.pi
            weight = np.where(el > 0, np.sin(el) * np.cos(el), 0.0) * (math.pi / h) * (2 * math.pi / w)
            self._hdr_images[name] = image
            self._hdr_irradiance[name] = float((lum.sum(1) * weight).sum())
        return self._hdr_images[name], self._hdr_irradiance[name]

    def _world(self, light: Lighting):
        bpy = self.bpy
        old = self.scene.world
        world = bpy.data.worlds.new(light.style)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            world.use_nodes = True
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = 256
        nodes, links = world.node_tree.nodes, world.node_tree.links
        background = nodes["Background"]
        coords = nodes.new("ShaderNodeTexCoord")

        def math_node(op, a, b=None):
            node = nodes.new("ShaderNodeMath")
            node.operation = op
            for i, value in enumerate((a, b)):
                if value is None:
                    continue
                if isinstance(value, (int, float)):
                    node.inputs[i].default_value = value
                else:
                    links.new(value, node.inputs[i])
            return node.outputs[0]

        if light.world == "hdr":
            image, irradiance = self._hdr(light.hdr)
            tex = nodes.new("ShaderNodeTexEnvironment")
            tex.image = image
            mapping = nodes.new("ShaderNodeMapping")
            mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(light.hdr_rotation))
            links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
            links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
            links.new(tex.outputs["Color"], background.inputs["Color"])
            background.inputs["Strength"].default_value = light.level / max(irradiance, 1e-6)
        elif light.world == "sky":
            sky = nodes.new("ShaderNodeTexSky")
            sky.sky_type = light.sky_model
            elevation, azimuth = math.radians(light.sky_elevation), math.radians(light.sky_azimuth)
            if light.sky_model == "MULTIPLE_SCATTERING":
                sky.sun_disc = False
                sky.sun_elevation = elevation
                # This model's sun sits at azimuth 90 deg - rotation (found by rendering its sun disc from 8 sides).
                sky.sun_rotation = math.pi / 2 - azimuth
                sky.aerosol_density = light.aerosol
            else:
                sky.sun_direction = (math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation))
                sky.turbidity = light.turbidity
                sky.ground_albedo = 0.3
            sky_level = sky_luminance(light.sky_elevation, light.sky_model, light.turbidity)
            color = sky.outputs["Color"]
            if light.clouds > 0:
                # A flat cloud layer: the view direction projected onto a plane above (x/z, y/z), noise on it,
                # thresholded by the coverage, faded out towards the horizon.
                sep = nodes.new("ShaderNodeSeparateXYZ")
                links.new(coords.outputs["Generated"], sep.inputs["Vector"])
                z = math_node("MAXIMUM", sep.outputs["Z"], 0.03)
                comb = nodes.new("ShaderNodeCombineXYZ")
                links.new(math_node("DIVIDE", sep.outputs["X"], z), comb.inputs["X"])
                links.new(math_node("DIVIDE", sep.outputs["Y"], z), comb.inputs["Y"])
                comb.inputs["Z"].default_value = light.cloud_offset[2]
                noise = nodes.new("ShaderNodeTexNoise")
                noise.inputs["Scale"].default_value = light.cloud_scale
                noise.inputs["Detail"].default_value = 5.0
                noise.inputs["Roughness"].default_value = 0.55
                mapping = nodes.new("ShaderNodeMapping")
                mapping.inputs["Location"].default_value = (light.cloud_offset[0], light.cloud_offset[1], 0.0)
                links.new(comb.outputs["Vector"], mapping.inputs["Vector"])
                links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
                cover = nodes.new("ShaderNodeMapRange")
                threshold = 0.62 - 0.3 * light.clouds
                cover.inputs["From Min"].default_value, cover.inputs["From Max"].default_value = threshold, threshold + 0.12
                links.new(noise.outputs["Fac"], cover.inputs["Value"])
                horizon = nodes.new("ShaderNodeMapRange")
                horizon.inputs["From Min"].default_value, horizon.inputs["From Max"].default_value = 0.02, 0.25
                links.new(sep.outputs["Z"], horizon.inputs["Value"])
                amount = math_node("MULTIPLY", cover.outputs["Result"], horizon.outputs["Result"])
                # Clouds as bright as the sky's average radiance times their brightness, in the sky's own units.
                cloud = tuple(c * light.cloud_brightness * sky_level / math.pi * 1.2 for c in light.cloud_tint)
                mix = nodes.new("ShaderNodeMix")
                mix.data_type = "RGBA"
                links.new(amount, _socket(mix.inputs, "Factor_Float"))
                links.new(color, _socket(mix.inputs, "A_Color"))
                _socket(mix.inputs, "B_Color").default_value = (*cloud, 1.0)
                color = _socket(mix.outputs, "Result_Color")
            links.new(color, background.inputs["Color"])
            background.inputs["Strength"].default_value = light.level / sky_level
        else:  # overcast: CIE overcast sky, L(z) = Lz (1 + 2 z) / 3, which gives horizontal irradiance 7 pi Lz / 9
            sep = nodes.new("ShaderNodeSeparateXYZ")
            links.new(coords.outputs["Generated"], sep.inputs["Vector"])
            z = math_node("MAXIMUM", sep.outputs["Z"], 0.0)
            shape = math_node("DIVIDE", math_node("ADD", math_node("MULTIPLY", z, 2.0), 1.0), 3.0)
            noise = nodes.new("ShaderNodeTexNoise")  # cloud texture, +-15%
            noise.inputs["Scale"].default_value = 3.0
            noise.inputs["Detail"].default_value = 4.0
            mapping = nodes.new("ShaderNodeMapping")
            mapping.inputs["Location"].default_value = light.cloud_offset
            links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
            links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
            texture = nodes.new("ShaderNodeMapRange")
            texture.inputs["To Min"].default_value, texture.inputs["To Max"].default_value = 0.8, 1.2
            links.new(noise.outputs["Fac"], texture.inputs["Value"])
            value = math_node("MULTIPLY", shape, texture.outputs["Result"])
            mix = nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.blend_type = "MULTIPLY"
            _socket(mix.inputs, "Factor_Float").default_value = 1.0
            _socket(mix.inputs, "A_Color").default_value = (*light.tint, 1.0)
            links.new(value, _socket(mix.inputs, "B_Color"))
            links.new(_socket(mix.outputs, "Result_Color"), background.inputs["Color"])
            background.inputs["Strength"].default_value = 9.0 * light.level / (7.0 * math.pi)
        self.scene.world = world
        if old is not None:
            bpy.data.worlds.remove(old)

    def _lights(self, light: Lighting) -> None:
        bpy = self.bpy
        for obj in self._style_lights:
            data = obj.data
            bpy.data.objects.remove(obj)
            bpy.data.lights.remove(data)
        self._style_lights = []
        if light.sun is not None:
            sun = light.sun
            data = bpy.data.lights.new("sun", "SUN")
            data.energy, data.angle, data.color = sun.strength, math.radians(sun.angle), sun.color
            obj = bpy.data.objects.new("sun", data)
            # A sun lamp shines along its -Z: tilt it by (90 - elevation) about X, turn it to the azimuth.
            obj.rotation_euler = (math.radians(90.0 - sun.elevation), 0.0, math.radians(sun.azimuth + 90.0))
            self.scene.collection.objects.link(obj)
            self._style_lights.append(obj)
        for i, lamp in enumerate(light.lamps):
            data = bpy.data.lights.new(f"lamp{i}", "POINT")
            data.energy, data.shadow_soft_size, data.color = lamp.power, lamp.radius, lamp.color
            obj = bpy.data.objects.new(f"lamp{i}", data)
            obj.location = lamp.location
            self.scene.collection.objects.link(obj)
            self._style_lights.append(obj)

    # ------------------------------------------------------------------ render

    def _render(self, path: Path) -> None:
        self.scene.render.filepath = str(path)
        with _quiet_stdout():
            self.bpy.ops.render.render(write_still=True)
        if not path.is_file():
            raise HarmcliError(f"{path}: Blender did not write the frame")

    def render_style(self, light: Lighting, path: Path, seed: int) -> None:
        """Render the built scene under ``light`` to an 8-bit RGB PNG at ``path``."""
        scene = self.scene
        self._world(light)
        self._lights(light)
        scene.render.film_transparent = False
        scene.cycles.samples = self.samples
        scene.cycles.use_denoising = self.denoise
        scene.cycles.use_adaptive_sampling = False
        scene.cycles.seed = seed % (1 << 31)
        scene.view_settings.view_transform = "AgX"
        scene.view_settings.look = "AgX - Medium High Contrast"
        scene.view_settings.exposure = light.exposure
        settings = scene.render.image_settings
        settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
        settings.compression = 15
        self._render(path)

    def render_masks(self, tmp: Path) -> list[np.ndarray]:
        """Coverage of each foreground object, float32 (H, W) in [0, 1], anti-aliased and occluded by everything
        in front of it. Three objects per render (one colour channel each)."""
        bpy, scene = self.bpy, self.scene
        colors = ((1.0, 0.0, 0.0, 1.0), (0.0, 1.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0))
        emitters = []
        for i, color in enumerate(colors):
            mat = bpy.data.materials.new(f"mask{i}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mat.use_nodes = True
            nodes = mat.node_tree.nodes
            nodes.remove(nodes["Principled BSDF"])
            emission = nodes.new("ShaderNodeEmission")
            emission.inputs["Color"].default_value = color
            mat.node_tree.links.new(emission.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
            emitters.append(mat)
        saved = {obj.name: obj.material_slots[0].material for obj in self.objects}
        world = scene.world
        black = bpy.data.worlds.new("mask")
        lights = [obj.hide_render for obj in self._style_lights]
        scene.world = black
        for obj in self._style_lights:
            obj.hide_render = True
        scene.render.film_transparent = True
        scene.cycles.samples = self.mask_samples
        scene.cycles.use_denoising = False
        scene.cycles.use_adaptive_sampling = self.mask_adaptive
        scene.cycles.adaptive_threshold = 0.002
        scene.cycles.adaptive_min_samples = 8
        scene.view_settings.view_transform, scene.view_settings.look, scene.view_settings.exposure = "Standard", "None", 0.0
        settings = scene.render.image_settings
        settings.file_format, settings.color_mode, settings.color_depth = "OPEN_EXR", "RGBA", "32"
        masks = []
        try:
            for start in range(0, len(self.foreground), 3):
                group = self.foreground[start:start + 3]
                for obj in self.objects:
                    member = obj in group
                    obj.is_holdout = not member
                    if member:
                        obj.material_slots[0].material = emitters[group.index(obj)]
                path = tmp.with_name(f"{tmp.stem}{start}.exr")
                self._render(path)
                image = bpy.data.images.load(str(path), check_existing=False)
                try:
                    px = np.empty(self.size * self.size * 4, dtype=np.float32)
                    image.pixels.foreach_get(px)
                finally:
                    bpy.data.images.remove(image)
                    path.unlink()
                px = px.reshape(self.size, self.size, 4)[::-1]  # Blender's rows start at the bottom
                masks += [np.clip(px[..., c], 0.0, 1.0) for c in range(len(group))]
        finally:
            for obj in self.objects:
                obj.is_holdout = False
                obj.material_slots[0].material = saved[obj.name]
            for obj, hidden in zip(self._style_lights, lights):
                obj.hide_render = hidden
            scene.world = world
            bpy.data.worlds.remove(black)
            for mat in emitters:
                bpy.data.materials.remove(mat)
        return masks
