"""``harmcli export``: a weights file to ONNX, for the CPU path that does not import PyTorch.

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
