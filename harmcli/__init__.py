"""harmcli: parametric image harmonization (curves + shading map) from the command line.

Kept free of heavy imports so that ``harmcli --help`` and ``--version`` answer instantly.
"""

import os
import sys

__version__ = "0.1.0"

# OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when cv2 is loaded, and refuses to decode larger images (default
# 2**30 pixels). harmcli has its own limit (--max-pixels), so OpenCV's is lifted before anything loads cv2. When
# cv2 was loaded first (harmcli used as a library) or the variable is set, it stands, and harmcli.io.images
# refuses larger images with a clear line.
OPENCV_PIXEL_CAP_LIFTED = "cv2" not in sys.modules and "OPENCV_IO_MAX_IMAGE_PIXELS" not in os.environ
if OPENCV_PIXEL_CAP_LIFTED:
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(1 << 40)
