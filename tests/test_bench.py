"""``harmcli bench`` at tiny sizes: it runs, prints its table, and the JSON follows the documented schema.

No timing assertions: the speed goals live in the benchmark itself, not in tests.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import harmcli.cli.bench_cmd  # noqa: F401  registers the command
from harmcli.bench import SCHEMA, STAGES, BenchConfig, make_scene, parse_model, parse_sizes, render, run_bench
from harmcli.cli.app import app, main
from harmcli.errors import UsageError

TIMING_KEYS = {"median_ms", "min_ms", "max_ms", "runs"}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    # lite@64 keeps the untrained network cheap; 64x48 is a custom size, 100 a square one. One thread: a shared
    # CI machine makes torch's two-thread barriers slow, and run_bench restores the setting afterwards.
    args = ["bench", "--device", "cpu", "--model", "lite@64", "--sizes", "64x48,100", "--runs", "2", "--warmup", "1"]
    args += ["--threads", "1", "--no-oneshot", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.stdout


def test_bench_json_follows_the_schema(bench_report):
    report, _ = bench_report
    assert report["schema"] == SCHEMA
    keys = ("device", "torch_threads", "opencv_threads", "cpu", "versions", "settings", "models", "sizes", "stages", "floor")
    for key in (*keys, "totals", "peak_memory", "folder", "video", "notes"):
        assert key in report, key
    assert report["device"] == ["cpu"]
    assert isinstance(report["torch_threads"], int) and report["torch_threads"] >= 1
    assert set(report["versions"]) >= {"harmcli", "python", "torch", "numpy", "opencv"}
    assert report["settings"]["runs"] == 2 and report["settings"]["warmup"] == 1
    (name, model), = report["models"].items()
    assert name == "lite@64" and model["preset"] == "lite" and model["low_res"] == 64 and model["weights"] == "untrained"
    assert model["parameters"] > 1_000_000
    assert list(report["sizes"]) == ["64x48", "100"]
    assert (report["sizes"]["64x48"]["width"], report["sizes"]["64x48"]["height"]) == (64, 48)
    for info in report["sizes"].values():
        assert 0.2 < info["mask_coverage"] < 0.5 and info["jpeg_bytes"] > 0


def test_bench_times_every_stage_at_every_size(bench_report):
    report, _ = bench_report
    stages = report["stages"]
    for entry in stages:
        assert TIMING_KEYS <= set(entry) and entry["runs"] == 2
        assert all(_number(entry[k]) and entry[k] >= 0 for k in ("median_ms", "min_ms", "max_ms"))
        assert entry["min_ms"] <= entry["median_ms"] <= entry["max_ms"]
        assert entry["stage"] in STAGES
    network = [s for s in stages if s["stage"] == "network"]
    # once per engine, not per size: auto on the CPU times PyTorch and ONNX Runtime
    assert [(s["size"], s["model"], s["precision"], s["backend"]) for s in network] == [
        (None, "lite@64", "fp32", "torch"), (None, "lite@64", "fp32", "onnx")
    ]
    for size in ("64x48", "100"):
        present = {s["stage"] for s in stages if s["size"] == size}
        assert present == set(STAGES) - {"network"}, size
    assert {(s["model"], s["backend"]) for s in stages if s["stage"] == "downsample"} == {("lite@64", "torch"), ("lite@64", "onnx")}
    assert {s["backend"] for s in stages if s["stage"] not in ("downsample", "network")} == {None}
    totals = {(t["size"], t["model"], t["precision"], t["backend"]) for t in report["totals"]}
    assert totals == {(size, "lite@64", "fp32", b) for size in ("64x48", "100") for b in ("torch", "onnx")}


def test_bench_floor_ratio_and_memory(bench_report):
    report, stdout = bench_report
    assert [f["size"] for f in report["floor"]] == ["64x48", "100"]
    for floor in report["floor"]:
        assert TIMING_KEYS <= set(floor) and _number(floor["ratio"]) and floor["ratio"] > 0
        apply = next(s for s in report["stages"] if s["stage"] == "apply" and s["size"] == floor["size"])
        assert floor["apply_median_ms"] == apply["median_ms"]
        assert floor["ratio"] == pytest.approx(apply["median_ms"] / floor["median_ms"])
    (memory,) = report["peak_memory"]
    assert memory["size"] == "100" and memory["device"] == "cpu"  # the largest size
    assert memory["peak_rss_mib"] >= memory["baseline_rss_mib"] > 0 and memory["rss_increase_mib"] >= 0
    assert memory["cuda_max_allocated_mib"] is None
    assert report["settings"]["threads"] == 1 and report["torch_threads"] == 1
    assert report["folder"] is None and report["oneshot"] is None
    for text in ("decode JPEG", "apply ÷ floor", "network lite@64 fp32 torch", "network lite@64 fp32 onnx", "peak memory", "untrained"):
        assert text in stdout, text


def test_folder_mode_compares_with_the_opencv_floor(tmp_path):
    import torch

    threads = torch.get_num_threads()
    config = BenchConfig(devices=["cpu"], models=["lite@64"], sizes=parse_sizes("32"), runs=1, warmup=0, threads=1,
                         folder=2, folder_size="160x120", memory=False, oneshot=False)
    report = run_bench(config)
    assert torch.get_num_threads() == threads  # restored
    folder = report["folder"]
    assert folder["images"] == 2 and folder["size"] == "160x120" and folder["model"] == "lite@64"
    assert folder["mode"].startswith("harmcli.batch.run_batch")
    assert folder["backend"] == "onnx"  # what `harmcli harmonize FOLDER` runs on a CPU
    assert _number(folder["ratio"]) and folder["ratio"] == pytest.approx(folder["harmcli_s"] / folder["opencv_loop_s"])
    assert folder["harmcli_ms_per_image"] == pytest.approx(folder["harmcli_s"] / 2 * 1e3)
    assert any("folder mode" in str(r) for r in render(report))


def test_bench_json_to_stdout_and_quiet(tmp_path):
    args = ["bench", "--device", "cpu", "--model", "lite@64", "--sizes", "32", "--runs", "1", "--warmup", "0"]
    args += ["--threads", "1", "--no-memory", "--no-oneshot", "--backend", "torch", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--json", "-"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["peak_memory"] == [] and report["folder"] is None
    assert list(report["sizes"]) == ["32"]
    assert {s["backend"] for s in report["stages"] if s["stage"] == "network"} == {"torch"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "huge"], "not a size"),
        (["--sizes", "8x8"], "out of range"),
        (["--model", "tiny"], "unknown model"),
        (["--model", "lite@100"], "multiple of 32"),
        (["--runs", "0"], "--runs"),
        (["--device", "tpu"], "--device must be"),
        (["--weights", "w.safetensors", "--model", "paper"], "leave out --model"),
    ],
)
def test_bench_bad_options_exit_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--no-memory", "--sizes", "32", *args] if "--sizes" not in args else ["bench", "--no-memory", *args])
    assert exit_info.value.code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_cuda_without_gpu_is_a_device_error(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--device", "cuda", "--sizes", "32", "--no-memory"])
    assert exit_info.value.code == 1
    assert "no CUDA GPU" in capsys.readouterr().err


def test_parse_sizes_and_models():
    assert [(s.name, s.width, s.height) for s in parse_sizes("512, 1080P,4k,12mp,640x480")] == [
        ("512", 512, 512), ("1080p", 1920, 1080), ("4k", 3840, 2160), ("12mp", 4000, 3000), ("640x480", 640, 480)
    ]
    assert parse_model("lite@512").low_res == 512 and parse_model("paper").low_res is None
    with pytest.raises(UsageError):
        parse_sizes(" , ")


def test_scene_is_realistic():
    composite, background, mask = make_scene(320, 240, seed=3)
    assert composite.shape == background.shape == (240, 320, 3) and composite.dtype == np.uint8
    assert 0.25 < mask.mean() / 255 < 0.45  # about 35 % of the frame
    assert ((mask > 0) & (mask < 255)).any()  # a soft edge
    assert composite.std() > 10 and not np.array_equal(composite, background)


def test_oneshot_times_whole_processes_against_the_plain_script():
    """Fresh processes with the shipped weights: the plain OpenCV script, harmcli on each backend, --help."""
    config = BenchConfig(devices=["cpu"], models=["lite@64"], sizes=parse_sizes("32"), runs=1, warmup=0, threads=1,
                         memory=False, oneshot_size="96x64")
    report = run_bench(config)
    oneshot = report["oneshot"]
    assert oneshot["size"] == "96x64" and oneshot["runs"] == 1 and oneshot["low_res"] == 256
    assert set(oneshot["seconds"]) == {"plain_opencv", "torch", "onnx", "help"}
    for name, timing in oneshot["seconds"].items():
        assert 0 < timing["min"] <= timing["median"] <= timing["max"], name
    for backend in ("torch", "onnx"):
        assert oneshot["ratio"][backend] == pytest.approx(oneshot["seconds"][backend]["median"] / oneshot["seconds"]["plain_opencv"]["median"])
        assert f"--backend {backend}" in oneshot["commands"][backend]
    assert oneshot["commands"]["plain_opencv"].split()[1].endswith("plain_opencv.py")
    assert any("one-shot" in str(r) for r in render(report))


def test_video_mode_times_a_clip_end_to_end():
    config = BenchConfig(devices=["cpu"], models=["lite@64"], sizes=parse_sizes("32"), runs=1, warmup=0, threads=1,
                         video=6, video_size="64x48", memory=False)
    video = run_bench(config)["video"]
    assert video["frames"] == 6 and video["size"] == "64x48" and video["codec"] == "h264"
    assert video["frames_per_second"] == pytest.approx(6 / video["seconds"])
    breakdown = video["breakdown_s"]
    assert breakdown["analyse"] + breakdown["write"] <= video["seconds"]
    assert all(_number(v) and v >= 0 for v in breakdown.values())
    assert breakdown["network"] > 0 and breakdown["encode"] > 0
