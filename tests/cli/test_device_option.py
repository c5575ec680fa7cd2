"""A misspelt --device is bad usage (exit 2) in every command that takes one, before any work is done."""

import pytest

from tests.cli import assert_one_error, run  # noqa: F401  (run is a fixture)


@pytest.mark.parametrize(
    "command",
    [
        ["harmonize", "fg.png", "bg.png", "mask.png", "-o", "out.png"],
        ["curves", "fg.png", "bg.png", "mask.png", "-o", "out.json"],
        ["eval", "data", "-m", "identity"],
        ["bench", "--sizes", "64"],
    ],
    ids=lambda c: c[0],
)
def test_misspelt_device_is_a_usage_error(run, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # the relative paths above name nothing: nothing may be read or written
    result = run(*command, "--device", "gpu")
    assert_one_error(result, 2, "--device", "'gpu'")
    assert not any(tmp_path.iterdir())
