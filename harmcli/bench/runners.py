"""Whole harmonize runs over files: harmcli's own folder pipeline, a plain loop, and the OpenCV floor."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from harmcli.bench.config import JPEG_QUALITY, MAX_PIXELS
from harmcli.errors import HarmcliError
from harmcli.ops.adjustment import Adjustment


class _LoadedPredictor:
    """The predictor interface of :mod:`harmcli.batch`, over an already built (possibly untrained) network."""

    def __init__(self, harmonizer):
        self.harmonizer = harmonizer

    def load(self) -> None:
        pass

    def __call__(self, inputs) -> Adjustment:
        return self.harmonizer.predict(inputs.composite, inputs.background, inputs.mask)


def batch_runner(harmonizer, composites: Path, masks: Path, output: Path) -> Callable[[], None] | None:
    """``harmcli harmonize COMPOSITES --mask MASKS -o OUTPUT`` through :func:`harmcli.batch.run_batch`, or None
    when this version of the batch module does not offer what is needed."""
    try:
        from harmcli import batch
        from harmcli.io.images import READ_EXTENSIONS, WRITE_EXTENSIONS

        spec = batch.InputSpec.from_args([composites], masks)
        plan = batch.match_items(spec, READ_EXTENSIONS)
        layout = batch.plan_output(spec, output, extension=None, allowed=WRITE_EXTENSIONS)
        job = batch.HarmonizeJob(
            reader=batch.InputReader(max_pixels=MAX_PIXELS), layout=layout, predictor=_LoadedPredictor(harmonizer),
            existing="overwrite", jpeg_quality=JPEG_QUALITY,
        )
        run_one, run_batch = batch.run_one, batch.run_batch
    except (ImportError, AttributeError, TypeError):
        return None

    def run() -> None:
        # One file: what `harmcli harmonize` does for a single image; folders: the folder loop.
        results = run_batch(job, plan).results if spec.is_folder else [run_one(job, plan.items[0])]
        failed = [r for r in results if r.status != "done"]
        if failed or not results:
            raise HarmcliError(f"bench: harmonize failed: {failed[0].message if failed else 'no items matched'}")

    return run


def loop_runner(harmonizer, pairs: list[tuple[Path, Path]], output: Path) -> Callable[[], None]:
    """The same work as a plain loop: read, harmonize, write JPEG q95."""
    from harmcli.io.images import read_image, read_mask, write_image

    def run() -> None:
        for composite_path, mask_path in pairs:
            rgb = read_image(composite_path).rgb
            result, _ = harmonizer.harmonize(rgb, rgb, read_mask(mask_path, size=rgb.shape[:2]))
            write_image(output / composite_path.name, result, jpeg_quality=JPEG_QUALITY)

    return run


def opencv_loop(pairs: list[tuple[Path, Path]], output: Path, low_res: int) -> Callable[[], None]:
    """The floor for folder mode: :func:`harmcli.bench.plain_opencv.process` over every pair, in one process."""
    from harmcli.bench.plain_opencv import process

    def run() -> None:
        for composite_path, mask_path in pairs:
            process(composite_path, mask_path, output / composite_path.name, low_res)

    return run
