"""Commands on weights files: ``harmcli export`` (to ONNX, for the CPU path that does not import PyTorch) and
``harmcli average`` (several fine-tuned files into one, as the shipped weights were made).

Only Typer and the standard library at module level; torch, onnx and onnxruntime load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import app


@app.command("export")
def export_command(
    weights: Annotated[
        Path, typer.Argument(help="A harmcli .safetensors weights file.", metavar="WEIGHTS", show_default=False)
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "-o", "--output", help="The .onnx file to write. \\[default: WEIGHTS with .onnx, beside it]", show_default=False
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No message when done.")] = False,
) -> None:
    """Export the network in WEIGHTS to ONNX (model, low-res size, versions and the weights' SHA-256 go into its
    metadata). Beside the weights, as NAME.onnx, it is what --backend auto picks on the CPU."""
    import time

    from harmcli.batch import same_file
    from harmcli.errors import ImageWriteError, UsageError
    from harmcli.onnx_backend import export_onnx, onnx_path_for

    output = output if output is not None else onnx_path_for(weights)
    if output.suffix.lower() != ".onnx":
        raise UsageError(f"{output}: -o must end in .onnx")
    if output.exists() and same_file(output, weights):
        raise ImageWriteError(f"{output}: this is the weights file itself; choose another output")
    if output.exists() and not overwrite:
        raise ImageWriteError(f"{output}: already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    export_onnx(weights, output)
    if not quiet:
        typer.echo(f"wrote {output} in {time.perf_counter() - started:.1f} s", err=True)


@app.command("average")
def average_command(
    weights: Annotated[
        list[Path],
        typer.Argument(help="Two or more .safetensors files of one model (e.g. runs' best and last).", metavar="WEIGHTS", show_default=False),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .safetensors file to write.", show_default=False)],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (never one of the inputs).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No message when done.")] = False,
) -> None:
    """Average several weights files of one model into one ("model soup"): runs fine-tuned from the same file
    average to a working network, often better than each; the shipped weights are such a mean (weights/README.md)."""
    import time

    from harmcli.batch import same_file
    from harmcli.errors import ImageWriteError, UsageError
    from harmcli.weights import average_weights

    if output.suffix.lower() != ".safetensors":
        raise UsageError(f"{output}: -o must end in .safetensors")
    if len(weights) < 2:
        raise UsageError("average needs two or more weights files")
    if output.exists():
        if any(same_file(output, w) for w in weights if w.exists()):
            raise ImageWriteError(f"{output}: is one of the inputs; choose another output")
        if not overwrite:
            raise ImageWriteError(f"{output}: already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    average_weights(weights, output)
    if not quiet:
        typer.echo(f"wrote {output}, the mean of {len(weights)} files, in {time.perf_counter() - started:.1f} s", err=True)
