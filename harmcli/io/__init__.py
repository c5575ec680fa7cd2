"""Files in and out: images (``images``) and adjustment exports (``adjustment_files``), both written through
``safe_write`` (complete or absent, never replacing a file that appeared meanwhile); ``native_log`` catches what
the C image libraries print while decoding.

Submodules are imported by name (``from harmcli.io.images import read_image``) so that importing the package
stays free of OpenCV and tifffile until they are needed.
"""
