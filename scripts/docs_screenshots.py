"""Screenshots of an HTML report at phone and laptop width for the manual (docs/report-390.png, -1400.png).

    python scripts/docs_screenshots.py results/0001_quick-lm.json
    optipng -o7 docs/report-*.png      # optional: the same pixels, about 10% smaller

Renders ``energybench report`` of the run in headless Chromium (tests/support/browser.py: Debian's ``chromium``), a
390 px phone frame and a 1400 px window, each only as tall as the header and the "At a glance" headlines (on a
phone, the top of the first card), and writes each as a palette PNG of its 8 most used colours (the rest mapped
to the nearest): the manual's pages and images stay under 150 KB together.
"""

from __future__ import annotations

import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from browser import decode_png, phone_frame, screenshot  # noqa: E402

from energybench import build_report, load_run  # noqa: E402
from energybench.render.report_html import render_html  # noqa: E402


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def palette_png(src: Path, dst: Path, colours: int = 8) -> None:
    """``src`` (RGB/RGBA) as an indexed PNG of its ``colours`` most used colours."""
    width, height, rows, bpp = decode_png(src)
    pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, bpp)[:, :, :3]
    flat = pixels.reshape(-1, 3).astype(np.int32)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    top = uniq[np.argsort(-counts)[:colours]]
    pal = np.stack([(top >> 16) & 255, (top >> 8) & 255, top & 255], axis=1)
    uniq_rgb = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
    nearest = np.empty(len(uniq), dtype=np.uint8)
    for start in range(0, len(uniq), 4096):  # nearest palette colour of every distinct colour, in chunks
        block = uniq_rgb[start:start + 4096, None, :] - pal[None, :, :]
        nearest[start:start + 4096] = np.argmin((block * block).sum(axis=2), axis=1)
    index = nearest[inverse].reshape(height, width)
    raw = b"".join(b"\x00" + index[y].tobytes() for y in range(height))
    dst.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
                    + _chunk(b"PLTE", pal.astype(np.uint8).tobytes()) + _chunk(b"IDAT", zlib.compress(raw, 9))
                    + _chunk(b"IEND", b""))


def main(run_file: str) -> None:
    html = render_html(build_report([load_run(run_file)]))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        page = work / "report.html"
        page.write_text(html, encoding="utf-8")
        framed = work / "phone.html"
        framed.write_text(phone_frame(html, 390, 404), encoding="utf-8")
        # the header and the "At a glance" headlines: a phone shows the top of the first card, a laptop both cards
        shots = {390: screenshot(framed, work / "390.png", 390, 404),
                 1400: screenshot(page, work / "1400.png", 1400, 470)}
        for width, png in shots.items():
            out = ROOT / "docs" / f"report-{width}.png"
            palette_png(png, out)
            print(f"{out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/docs_screenshots.py RESULTS_FILE")
    main(sys.argv[1])
