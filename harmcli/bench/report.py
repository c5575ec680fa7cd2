"""The report as rich tables and lines (the JSON is the report dict itself)."""

from __future__ import annotations

import re


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    return f"{_ms(entry['median_ms'])} [{_ms(entry['min_ms'])}–{_ms(entry['max_ms'])}]"


def render(report: dict) -> list:
    """Rich renderables for ``report``: per device, a stage x size table; then memory, folder mode and notes."""
    from rich.table import Table
    from rich.text import Text

    sizes = report["sizes"]
    runs = report["settings"]["runs"]
    out = []

    def find(stage, size=None, device=None, model=None, precision=None, backend=None):
        for s in report["stages"]:
            same_device = device is None or s["device"] == device
            key = (s["stage"], s["size"], s["model"], s["precision"], s.get("backend"))
            if key == (stage, size, model, precision, backend) and same_device:
                return s
        return None

    def engine(s) -> str:
        return f" {s['backend']}" if s.get("backend") else ""

    for device in report["device"]:
        where = report["gpu"]["name"] if device.startswith("cuda") and report["gpu"] else report["cpu"]["name"]
        threads = report["torch_threads"]
        title = f"harmcli bench on {device} ({where}; torch {threads} threads): median ms [min–max] over {runs} runs"
        table = Table(title=Text(title, style="bold"), title_justify="left")
        table.add_column("stage")
        for name, info in sizes.items():
            dims = f"{info['width']}×{info['height']}"
            table.add_column(dims if re.fullmatch(r"[\dx]+", name) else f"{name}\n{dims}", justify="right")
        table.add_row("decode JPEG", *[_cell(find("decode", n)) for n in sizes])
        shrinks = [s for s in report["stages"] if s["stage"] == "downsample" and s["device"] == device]
        for model, backend in dict.fromkeys((s["model"], s.get("backend")) for s in shrinks):
            cells = [_cell(find("downsample", n, device, model, None, backend)) for n in sizes]
            where = f"{model}, {backend}" if backend else model
            table.add_row(f"downsample → {report['models'][model]['low_res']}² ({where})", *cells)
        network_rows = [s for s in report["stages"] if s["stage"] == "network" and s["device"] == device]
        for s in network_rows:
            res = report["models"][s["model"]]["low_res"]
            table.add_row(f"network {s['model']} {s['precision']}{engine(s)} ({res}², any size)", *[_cell(s)] * len(sizes))
        table.add_row("apply", *[_cell(find("apply", n)) for n in sizes])
        floors = {f["size"]: f for f in report["floor"]}
        table.add_row("apply floor: one cv2.LUT", *[_cell(floors.get(n)) for n in sizes])
        table.add_row("apply ÷ floor", *[f"{floors[n]['ratio']:.1f}×" if n in floors else "-" for n in sizes])
        table.add_row("encode JPEG q95", *[_cell(find("encode_jpeg", n)) for n in sizes])
        table.add_row("encode PNG", *[_cell(find("encode_png", n)) for n in sizes])
        for s in network_rows:
            key = (device, s["model"], s["precision"], s.get("backend"))
            totals = {
                t["size"]: t for t in report["totals"] if (t["device"], t["model"], t["precision"], t.get("backend")) == key
            }
            table.add_row(
                Text(f"total {s['model']} {s['precision']}{engine(s)} (decode→JPEG)", style="bold"),
                *[Text(f"{totals[n]['median_ms']:.0f}", style="bold") if n in totals else "-" for n in sizes],
            )
        out.append(table)
    for m in report["peak_memory"]:
        line = (
            f"peak memory, full harmonize of {m['size']} ({m['model']} on {m['device']}): +{m['rss_increase_mib']:.0f} MiB RSS "
            f"over {m['baseline_rss_mib']:.0f} MiB with the model loaded (process peak {m['peak_rss_mib']:.0f} MiB)"
        )
        if m.get("cuda_max_allocated_mib") is not None:
            line += f"; CUDA max allocated {m['cuda_max_allocated_mib']:.0f} MiB"
        out.append(Text(line))
    if report["folder"]:
        f = report["folder"]
        out.append(Text(
            f"folder mode, {f['images']} × {f['size']} JPEG ({f['model']} on {f['device']}, median of {f['repeats']}): "
            f"OpenCV loop {f['opencv_loop_s']:.2f} s ({f['opencv_ms_per_image']:.0f} ms/image), "
            f"harmcli {f['harmcli_s']:.2f} s ({f['harmcli_ms_per_image']:.0f} ms/image) = {f['ratio']:.2f}× the floor; "
            f"{f.get('backend', 'torch')}; {f['mode']}"
        ))
    if report.get("oneshot"):
        o = report["oneshot"]
        seconds = o["seconds"]
        parts = [f"plain OpenCV script {seconds['plain_opencv']['median']:.2f} s"]
        parts += [f"harmcli {b} {seconds[b]['median']:.2f} s ({ratio:.2f}×)" for b, ratio in o["ratio"].items()]
        parts.append(f"harmcli --help {seconds['help']['median']:.2f} s")
        out.append(Text(f"one-shot, one {o['size']} JPEG per process (median of {o['runs']}, start to exit): " + ", ".join(parts)))
    if report.get("video"):
        v = report["video"]
        b = v["breakdown_s"]
        out.append(Text(
            f"video, {v['frames']} frames of {v['size']} H.264 + mask video -> {v['codec']} crf {v['crf']} ({v['model']} on "
            f"{v['device']}, {v.get('backend', 'torch')}, --temporal {v['temporal']:g}): {v['seconds']:.1f} s = {v['frames_per_second']:.1f} frames/s end to "
            f"end; pass 1 {b['analyse']:.1f} s (reading {b['read']:.1f}, network {b['network']:.1f}), smoothing {b['smooth']:.2f} s, "
            f"pass 2 {b['write']:.1f} s (reading again {b['second_decode']:.1f}, apply {b['apply']:.1f}, encoding {b['encode']:.1f})"
        ))
    for note in report["notes"]:
        out.append(Text(f"note: {note}", style="dim"))
    return out
