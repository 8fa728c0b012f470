"""The image file suffixes ultralytics reads, in one place for the YOLO and VOC loaders and ``edgeproof detect``.

A copy of ultralytics 8.4's ``ultralytics.data.utils.IMG_FORMATS``, not an import: importing ultralytics
pulls in torch, which ``edgeproof detect``'s light install does not have (tests/data/test_yolo_files.py
checks the copy against the installed ultralytics). The YOLO loader lists a folder's images by these
suffixes, as ultralytics' dataset does, the VOC loader its ``JPEGImages/``, and ``detect`` a folder's, as
``yolo predict`` does. Whether the file then decodes is the decoder's business (HEIC/HEIF need a Pillow
plugin; without it such a file is an unreadable image, not a skipped one). Imports nothing: any side may
import it.
"""

from __future__ import annotations

IMAGE_SUFFIXES = (
    ".avif",
    ".bmp",
    ".dng",
    ".heic",
    ".heif",
    ".jp2",
    ".jpeg",
    ".jpg",
    ".mpo",
    ".png",
    ".tif",
    ".tiff",
    ".webp",
)
"""Lower case, with the dot; compare ``path.suffix.lower()``."""
