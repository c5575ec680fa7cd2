"""harmcli: parametric image harmonization (curves + shading map) from the command line.

Kept free of heavy imports so that ``harmcli --help`` and ``--version`` answer instantly.
"""

__version__ = "0.1.0"
