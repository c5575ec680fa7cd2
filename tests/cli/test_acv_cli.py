"""``--save-params look.acv`` says so when Photoshop's curves cannot follow the adjustment within one level."""

from __future__ import annotations

import numpy as np

from . import make_scene, run, write_image, write_params  # noqa: F401  (fixtures)


def test_save_params_acv_warns_for_curves_photoshop_cannot_follow(run, tmp_path):
    scene = make_scene()
    fg, bg, mask = (write_image(tmp_path / f"{n}.png", a) for n, a in (("fg", scene.fg), ("bg", scene.bg), ("mask", scene.mask)))
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 32)
    jagged = {c: (x.tolist(), np.r_[0, np.sort(rng.random(30)), 1].tolist()) for c in ("red", "green", "blue")}
    smooth = {c: (x.tolist(), (x**0.8).tolist()) for c in ("red", "green", "blue")}
    for name, curves, expected in (("jagged", jagged, 1), ("smooth", smooth, 0)):
        params = write_params(tmp_path / f"{name}.json", curves)
        result = run("harmonize", fg, bg, mask, "-o", tmp_path / f"{name}.png", "--params", params,
                     "--save-params", tmp_path / f"{name}.acv")
        assert result.code == 0, result.err
        notes = [line for line in result.err_lines if "Photoshop will draw" in line]
        assert len(notes) == expected, result.err
        assert (tmp_path / f"{name}.acv").exists()
