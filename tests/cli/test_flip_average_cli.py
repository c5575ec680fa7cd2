"""--no-flip-average on harmonize reaches the engine; without it the output is the mirror-averaged one."""

import numpy as np

from harmcli.pipeline import load_harmonizer
from tests.cli import active_weights, make_scene, read_image, run, write_image  # noqa: F401 (fixtures)


def test_no_flip_average_gives_the_single_pass_output(run, tmp_path, active_weights):
    scene = make_scene(seed=7, size=(60, 80))
    composite = scene.composite()
    comp = write_image(tmp_path / "c.png", composite)
    mask = tmp_path / "m.png"
    import cv2

    cv2.imwrite(str(mask), scene.mask)
    outputs = {}
    for flag in ("", "--no-flip-average"):
        out = tmp_path / f"out{flag}.png"
        done = run("harmonize", comp, "--mask", mask, "-o", out, "--weights", active_weights, "--backend", "torch", "-q", *([flag] if flag else []))
        assert done.code == 0, done.err
        outputs[flag] = read_image(out).astype(int)
    engine = load_harmonizer(active_weights, "cpu", "torch", threads=1, flip_average=False)
    single = engine.harmonize(composite, composite, scene.mask)[0].astype(int)
    assert np.abs(outputs["--no-flip-average"] - single).max() <= 1
    assert np.abs(outputs[""] - single).max() > 1
