"""Imports every command module so that each registers itself on the app (one line per module), in the order
--help lists them: what a user runs first, first; what builds the network last."""

from harmcli.cli import harmonize_cmd  # noqa: F401  harmonize, curves
from harmcli.cli import eval_cmd  # noqa: F401
from harmcli.cli import bench_cmd  # noqa: F401
from harmcli.cli import export_cmd  # noqa: F401  export, average
from harmcli.cli import train_cmd  # noqa: F401  make-composites, train
from harmcli.cli import render_cmd  # noqa: F401
