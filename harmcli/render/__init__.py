"""Rendered harmonization data (``harmcli render``): procedural scenes under ten lighting styles, rendered with
Blender's Cycles. Only :mod:`harmcli.render.blender` imports ``bpy``; everything else here is plain Python."""
