"""Files in and out: images (``images``) and adjustment exports (``adjustment_files``).

Submodules are imported by name (``from harmcli.io.images import read_image``) so that importing the package
stays free of OpenCV and tifffile until they are needed.
"""
