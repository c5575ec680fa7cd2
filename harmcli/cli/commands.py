"""Imports every command module so that each registers itself on the app (one line per module)."""

from harmcli.cli import train_cmd  # noqa: F401  make-composites, train
from harmcli.cli import eval_cmd  # noqa: F401
from harmcli.cli import harmonize_cmd  # noqa: F401
from harmcli.cli import bench_cmd  # noqa: F401
from harmcli.cli import export_cmd  # noqa: F401
from harmcli.cli import render_cmd  # noqa: F401
