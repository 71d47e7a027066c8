"""Decoding image files to uint8 RGB arrays, and the up-front scan that finds
unreadable files before training starts.

Every file-based dataset goes through :func:`decode_image`, so the pixels a model
sees do not depend on whether images were cached in memory or streamed from disk.

Conversions (documented behaviour):

- EXIF orientation is applied (camera JPEGs are stored rotated).
- Grayscale, palette, CMYK, RGBA... are converted to RGB; alpha is dropped (an image
  sensor has no alpha). 16-bit grayscale is scaled to 8 bits (``v // 257``).
- An image that is not ``image_size`` x ``image_size`` is centre-cropped to a square
  (the largest one) and resized with PIL's antialiased bilinear filter. Square images
  are only resized, so nothing is cropped from MLPerf VWW images.
- Very large images (over Pillow's "decompression bomb" warning size,
  ``PIL.Image.MAX_IMAGE_PIXELS``: 89,478,485 pixels by default, e.g. a 108 MP phone
  photo) are decoded downscaled (JPEG: at 1/2, 1/4 or 1/8 scale, still at least
  ``image_size`` on each side) and then cropped and resized as above. The upper limit
  is :func:`max_pixels` (twice that size, 178,956,970 pixels by default, where
  Pillow stops); larger files are skipped as unreadable, naming the limit.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger("larq_glt.data")

# Files with other extensions are ignored (README.txt, .DS_Store...), not reported
# as corrupt: only a file that claims to be an image and cannot be read is an error.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

# Large images are handled here (decode_image), so Pillow's warning about them
# is noise; above max_pixels() Pillow raises, and the file is skipped.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def max_pixels() -> int:
    """The largest image (in pixels) decoded; larger files are skipped."""
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 2**63


def is_image_file(name: str) -> bool:
    return not os.path.basename(name).startswith(".") and (
        os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16) // 257
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def fit_square(img: Image.Image, image_size: int) -> Image.Image:
    """Centre-crop to the largest square and resize to ``image_size`` (bilinear, antialiased)."""
    w, h = img.size
    if (w, h) == (image_size, image_size):
        return img
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    box = (left, top, left + side, top + side)
    return img.resize((image_size, image_size), Image.BILINEAR, box=box)


def decode_image(path: str, image_size: int) -> np.ndarray:
    """Read one file to a ``uint8`` array of shape ``[image_size, image_size, 3]``.

    Raises whatever PIL raises for an unreadable file (OSError, ValueError, ...);
    :func:`scan_images` turns that into a skipped-file record.
    """
    try:
        opened = Image.open(path)
    except Image.DecompressionBombError:
        raise ValueError(f"over the limit of {max_pixels():,} pixels decoded (larq_glt.data.images.max_pixels)") \
            from None
    with opened as img:
        w, h = img.size
        if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
            img.draft("RGB", (image_size, image_size))  # JPEG: decode at a fraction of the size (others: no-op)
        img.load()  # full decode: truncated files fail here, not mid-epoch
        try:
            img = ImageOps.exif_transpose(img) or img
        except Exception:  # noqa: BLE001 - a broken EXIF block does not spoil the pixels
            pass
        img = fit_square(_to_rgb(img), image_size)
        arr = np.asarray(img, dtype=np.uint8)
    if arr.shape != (image_size, image_size, 3):  # defensive: odd PIL modes
        raise ValueError(f"decoded to shape {arr.shape}")
    return arr


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


@dataclass
class ScanResult:
    """Outcome of decoding a list of files.

    ``ok`` indexes the readable files in the input order; ``images`` holds their
    pixels (``None`` when the scan was asked not to keep them); ``skipped`` lists
    ``(path, reason)`` for every unreadable file.
    """

    ok: np.ndarray
    images: np.ndarray | None
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_images(paths: Sequence[str], image_size: int, keep: bool = True) -> ScanResult:
    """Decode every file once; never raises for a bad file.

    With ``keep`` the decoded pixels are returned (one ``uint8`` array), otherwise
    only validity is recorded (the streaming pipeline decodes again per epoch).
    Decoding a 96x96 JPEG takes ~0.3 ms, so a 13k-image tree scans in a few seconds.
    """
    n = len(paths)
    images = np.empty((n, image_size, image_size, 3), np.uint8) if keep else None
    ok = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    start = time.monotonic()
    for i, path in enumerate(paths):
        try:
            arr = decode_image(path, image_size)
        except Exception as exc:  # noqa: BLE001 - any bad file is skipped, never raised
            skipped.append((str(path), _describe(exc)))
            continue
        ok[i] = True
        if keep:
            images[i] = arr
    if images is not None and skipped:
        images = images[ok]
    if n >= 2000:
        log.info("decoded %d images in %.1f s", n, time.monotonic() - start)
    return ScanResult(ok=np.flatnonzero(ok), images=images, skipped=skipped)


def report_skipped(skipped: Sequence[tuple[str, str]], where: str, show: int = 5) -> None:
    """Log how many files were unreadable, with the first few names and reasons."""
    if not skipped:
        return
    examples = "; ".join(f"{os.path.basename(p)} ({r})" for p, r in skipped[:show])
    more = f" and {len(skipped) - show} more" if len(skipped) > show else ""
    log.warning(
        "skipped %d unreadable image file(s) in %s: %s%s", len(skipped), where, examples, more
    )
