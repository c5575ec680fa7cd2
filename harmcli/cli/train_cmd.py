"""``harmcli make-composites`` and ``harmcli train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harmcli.cli.app import app


def _console():
    from rich.console import Console

    # soft_wrap: a long path stays on one line in a log instead of being wrapped at 80 columns.
    return Console(stderr=True, highlight=False, soft_wrap=True)


@app.command("make-composites")
def make_composites_command(
    src: Annotated[
        Path,
        typer.Argument(
            help="Folder with images/NAME.* and masks/NAME.png (and after/NAME.* for pairs).", metavar="SRC", show_default=False
        ),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="New (or empty) folder for the samples and manifest.jsonl.", show_default=False)
    ],
    mode: Annotated[
        Optional[list[str]],
        typer.Option(
            "--mode",
            metavar="MODE",
            help="real, retouch, transfer (another photo's colour and tone), illuminant (another colour temperature "
            "and intensity), pairs or composites; repeat or comma-separate for several. \\[default: real,retouch]",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same folder.")] = 0,
    per_photo: Annotated[int, typer.Option("--per-photo", min=1, help="Composites (real) or edited pairs (retouch, transfer, illuminant) per photo.")] = 1,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=1.0, help="Share of photos held out (by stem hash).")] = 0.1,
    after: Annotated[str, typer.Option(help="Subfolder of SRC with the retouched photos (pairs mode).")] = "after",
    limit: Annotated[
        Optional[int], typer.Option(min=1, metavar="N", help="Use only the first N photos (by name). \\[default: all]", show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (skipped photos and the summary still print).")] = False,
) -> None:
    """Build training composites from photos with object masks (paper §3.2).

    Photos (images/, after/) are read colour-managed: a photo tagged with another profile (Adobe RGB, ProPhoto ...)
    is converted to sRGB, an untagged one is taken as sRGB; the samples are written as 8-bit sRGB PNGs.

    Photos that cannot be used (unreadable, no mask, a mask that covers almost nothing, a colour profile that cannot
    be used) are reported and skipped.
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harmcli.data.composites import make_composites

    console = _console()
    modes = tuple(part.strip().lower() for value in (mode or ["real,retouch"]) for part in value.split(",") if part.strip())
    skipped: list[tuple[str, str]] = []

    def on_skip(stem: str, reason: str) -> None:
        skipped.append((stem, reason))
        console.print(f"[yellow]skipped[/] {escape(stem)}: {escape(reason)}")

    with Progress(TextColumn("[bold]make-composites"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=quiet or not console.is_terminal, transient=True) as progress:
        task = progress.add_task("", total=None)
        rows = make_composites(
            src, output, modes=modes, seed=seed, val_fraction=val_fraction, per_photo=per_photo, after_folder=after, limit=limit,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            on_skip=on_skip,
        )
    by_role: dict[str, int] = {}
    for row in rows:
        by_role[f"{row['role']}/{row['split']}"] = by_role.get(f"{row['role']}/{row['split']}", 0) + 1
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(by_role.items()))
    # A photo can be skipped by more than one mode; count photos, not messages.
    photos_skipped = len({stem for stem, _ in skipped})
    console.print(f"wrote {len(rows)} samples to {escape(str(output))} ({summary}); {photos_skipped} photo(s) skipped")


@app.command("train")
def train_command(
    data: Annotated[
        list[Path],
        typer.Argument(help="make-composites folder(s) and/or iHarmony4 folder(s).", metavar="DATA", show_default=False),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="RUN", show_default=False,
            help="Run folder: checkpoint.pt, log.jsonl, config.json, best.safetensors, last.safetensors. "
            "Given again, training resumes from its checkpoint.",
        ),
    ],
    recipe: Annotated[str, typer.Option(help="lite (2-core CPU, ~2 h) or paper (the paper's schedule).")] = "lite",
    model: Annotated[
        Optional[str], typer.Option(help="Model preset: lite or paper. \\[default: the recipe's]", show_default=False)
    ] = None,
    max_steps: Annotated[
        Optional[int],
        typer.Option(
            "--max-steps", min=1, help="Stop after this many steps in total (across resumes). \\[default: the schedule's]"
        ),
    ] = None,
    max_minutes: Annotated[
        Optional[float],
        typer.Option(
            "--max-minutes", min=0.1,
            help="Stop after this many minutes in total (across resumes). \\[default: lite 110, paper none]",
        ),
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Images per step. \\[default: 8]")] = None,
    size: Annotated[
        Optional[int], typer.Option(help="Training resolution (square). \\[default: lite 256, paper 512]", min=32)
    ] = None,
    lr: Annotated[
        Optional[float], typer.Option(help="Generator learning rate. \\[default: lite 1.5e-4, paper 4e-5]")
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Length of the schedule. \\[default: lite 10, paper 80]")] = None,
    supervised: Annotated[bool, typer.Option("--supervised/--no-supervised", help="Use the supervised stream.")] = True,
    adversarial: Annotated[bool, typer.Option("--adversarial/--no-adversarial", help="Use the adversarial stream and loss.")] = True,
    pretrained: Annotated[bool, typer.Option("--pretrained/--no-pretrained", help="Start the encoder from ImageNet weights.")] = True,
    init: Annotated[
        Optional[Path],
        typer.Option(
            "--init", metavar="WEIGHTS", show_default=False,
            help="Start the network from this .safetensors file (fine-tune; e.g. weights/harmcli-lite.safetensors) "
            "instead of ImageNet. Ignored on resume.",
        ),
    ] = None,
    identity_fraction: Annotated[
        Optional[float],
        typer.Option(
            "--identity-fraction", min=0.0, max=1.0,
            help="Share of supervised samples shown as their coherent target photo, to be left unchanged. \\[default: 0.15]",
        ),
    ] = None,
    global_jitter: Annotated[
        Optional[float],
        typer.Option(
            "--global-jitter", min=0.0, max=2.0, metavar="STOPS",
            help="Give each photo sample (composite, background and target together) a random global exposure, white "
            "balance and gamma of up to STOPS stops, so that photos are not learnt by their colours; 0 = off. \\[default: 0]",
        ),
    ] = None,
    crop_scale: Annotated[
        Optional[float],
        typer.Option(
            "--crop-scale", min=0.3, max=1.0, metavar="MIN",
            help="Cut each sample to a random crop whose side is MIN to 1 times the frame's (the foreground kept in) and "
            "scale it back, so that photos come at many framings; 1 = off. \\[default: 1]",
        ),
    ] = None,
    val_every: Annotated[
        Optional[int],
        typer.Option("--val-every", min=1, help="Validate (and keep the best weights) every N steps. \\[default: 250]"),
    ] = None,
    val_limit: Annotated[
        Optional[int],
        typer.Option("--val-limit", min=0, metavar="N", help="Held-out pairs per validation; 0 = all. \\[default: 256]"),
    ] = None,
    rendered_fraction: Annotated[
        Optional[float],
        typer.Option(
            "--rendered-fraction", min=0.0, max=1.0,
            help="Share of each supervised batch drawn from rendered pairs ('harmcli render' folders among DATA). "
            "\\[default: 0.25]",
        ),
    ] = None,
    cross_domain: Annotated[
        bool,
        typer.Option(
            "--cross-domain/--no-cross-domain",
            help="Second paper's cross-domain network: per-domain first stage and last head layers, domain "
            "discriminator, style classifiers (needs rendered folders). The saved weights are the photo branch.",
        ),
    ] = False,
    lambda_domain: Annotated[
        Optional[float], typer.Option("--lambda-domain", min=0.0, help="Weight of the domain discriminator term. \\[default: 0.01]")
    ] = None,
    lambda_style_rendered: Annotated[
        Optional[float],
        typer.Option("--lambda-style-rendered", min=0.0, help="Weight of the style cross-entropies on renders. \\[default: 0.01]"),
    ] = None,
    lambda_style_photo: Annotated[
        Optional[float],
        typer.Option("--lambda-style-photo", min=0.0, help="Weight of the style-aggregation loss on photos. \\[default: 0.01]"),
    ] = None,
    entropy_margin: Annotated[
        Optional[float], typer.Option("--entropy-margin", min=0.0, help="Margin of the entropy reduction, nats. \\[default: 0.1]")
    ] = None,
    ema: Annotated[
        Optional[float],
        typer.Option(
            "--ema", min=0.0, max=0.99999, metavar="DECAY",
            help="Keep an exponential moving average of the weights (e.g. 0.999); validation and saved weights use it. "
            "\\[default: off]",
        ),
    ] = None,
    cache: Annotated[
        Optional[Path],
        typer.Option(
            "--cache", metavar="DIR",
            help="Keep the decoded, resized data here and reuse it: later runs start in seconds, and runs on the same "
            "data at once share one copy in memory. \\[default: decode into memory each run]",
        ),
    ] = None,
    threads: Annotated[
        Optional[int], typer.Option(min=1, help="CPU threads for torch. \\[default: all cores]", show_default=False)
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed of the run. \\[default: 0]")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, step lines or validation lines; start and end still print.")
    ] = False,
) -> None:
    """Dual-stream semi-supervised training; started again on the same RUN folder it resumes."""
    import time

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harmcli.errors import HarmcliError
    from harmcli.train.config import resolve_config
    from harmcli.train.loop import train

    config = resolve_config(
        recipe, model=model, max_steps=max_steps, max_minutes=max_minutes, batch_size=batch_size, size=size, lr=lr,
        epochs=epochs, val_every=val_every, threads=threads, seed=seed,
        supervised=None if supervised else False, adversarial=None if adversarial else False,
        pretrained_backbone=None if pretrained else False, identity_fraction=identity_fraction, global_jitter=global_jitter,
        crop_min_scale=crop_scale,
        init_weights=str(init) if init is not None else None, val_limit=val_limit, rendered_fraction=rendered_fraction,
        cross_domain=True if cross_domain else None, lambda_domain=lambda_domain, lambda_style_rendered=lambda_style_rendered,
        lambda_style_photo=lambda_style_photo, entropy_margin=entropy_margin, ema_decay=ema or None,
    )
    if init is not None and not init.is_file():
        raise HarmcliError(f"{init}: no such weights file")
    console = _console()
    interactive = console.is_terminal and not quiet
    last_print = [0.0]
    with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console, disable=not interactive) as progress:
        task = progress.add_task("", total=None)

        def on_event(kind: str, record: dict) -> None:
            if kind == "resume":
                console.print(f"resuming from step {record['step']} ({escape(record['checkpoint'])})")
                for name, values in record.get("ignored", {}).items():
                    console.print(
                        f"note: {name} stays {values['kept']!r} as the run started (given: {values['given']!r}); "
                        "only --max-steps, --max-minutes and --threads change on resume"
                    )
            elif kind == "loading":
                progress.update(task, completed=record["done"], total=record["total"], description="reading the data")
            elif kind == "data":
                console.print("training data: " + ", ".join(f"{k} {v}" for k, v in record.items()))
            elif kind == "step":
                losses = " ".join(f"{k[5:]}={v:.4f}" for k, v in record.items() if k.startswith("loss_"))
                progress.update(task, completed=record["step"], total=record["total"], description=losses)
                if not interactive and not quiet and time.monotonic() - last_print[0] > 30:
                    last_print[0] = time.monotonic()
                    console.print(f"step {record['step']}/{record['total']} {losses}")
            elif kind == "val" and not quiet:
                if "val_fMSE" in record:
                    star = " (best)" if record.get("best") else ""
                    console.print(
                        f"step {record['step']}: val fMSE {record['val_fMSE']:.1f} (composite {record['val_fMSE_composite']:.1f}; "
                        f"on real photos {record['val_fMSE_real_photo']:.1f}), PSNR {record['val_PSNR']:.2f} dB{star}"
                    )
                if "val_rendered_fMSE" in record:
                    console.print(
                        f"step {record['step']}: rendered val fMSE {record['val_rendered_fMSE']:.1f} "
                        f"(composite {record['val_rendered_fMSE_composite']:.1f}), PSNR {record['val_rendered_PSNR']:.2f} dB"
                    )
            elif kind == "done":
                if record["best"] is not None:
                    weights = f"best weights: {escape(record['best'])}"
                else:  # nothing to validate on, so no "best"
                    weights = f"weights: {escape(record['last'])} (no validation samples, so no best.safetensors)"
                console.print(f"stopped at step {record['step']} ({record['reason']}); {weights}")

        train(list(data), output, config, on_event=on_event, cache_dir=cache)
