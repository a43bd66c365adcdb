"""Drive a real headless Chromium from tests: screenshots, the DOM after rendering, and network spying.

Debian's ``chromium`` package is what CI installs (``apt-get install -y chromium``); tests that need it call
``require_chromium()`` and are skipped, with that command in the reason, where it is absent.
A tiny PNG decoder (zlib + the five PNG row filters, numpy where a filter allows) lets tests check pixels
without Pillow.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import zlib
from pathlib import Path

import pytest

INSTALL_HINT = "install it with: apt-get install -y chromium"
TIMEOUT_S = 90


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("ENERGYBENCH_REQUIRE_BROWSER"):  # CI installs Chromium: its absence is a failure there
            pytest.fail(f"headless Chromium not found on PATH and ENERGYBENCH_REQUIRE_BROWSER is set; {INSTALL_HINT}")
        pytest.skip(f"headless Chromium not found on PATH; {INSTALL_HINT}")
    return path


def _run(args: list[str], proxy_port: int | None) -> subprocess.CompletedProcess[str]:
    """One headless Chromium invocation with a throwaway profile and every background request turned off.

    With ``proxy_port`` every request the page makes goes to that local port (where a ``NetworkSpy``
    listens) and nothing reaches the real network: the page is loaded "offline".
    """
    exe = require_chromium()
    with tempfile.TemporaryDirectory(prefix="eb-chromium-") as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
        ]
        if proxy_port is not None:
            cmd += [f"--proxy-server=127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>"]
        env = dict(os.environ, HOME=profile)
        return subprocess.run(cmd + args, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)


def screenshot(page: Path, png: Path, width: int, height: int, proxy_port: int | None = None) -> Path:
    """Render ``page`` at ``width`` x ``height`` CSS pixels into ``png``."""
    proc = _run([f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri()], proxy_port)
    if not png.exists():
        raise AssertionError(f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return png


def dump_dom(page: Path | str, proxy_port: int | None = None) -> str:
    """The DOM as serialised after parsing and running the page (what a user would really get)."""
    target = page if isinstance(page, str) else page.resolve().as_uri()
    proc = _run(["--dump-dom", "--virtual-time-budget=2000", target], proxy_port)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise AssertionError(f"chromium --dump-dom failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def phone_frame(html: str, width: int = 390, height: int = 2000) -> str:
    """A page that shows ``html`` in an iframe ``width`` CSS pixels wide.

    Headless Chromium never lays a window out narrower than 500 CSS px (a 390 px ``--window-size`` only crops
    the picture), so a phone is emulated with a same-origin ``srcdoc`` frame: its media queries and
    ``innerWidth`` see the phone's width. The outer page's title reports the frame's widths once it loads:
    ``W=<scrollWidth> V=<innerWidth> S=<number of report plots>``.
    """
    from html import escape

    return (
        "<!DOCTYPE html><html><head><title>loading</title><style>body{margin:0}iframe{border:0;display:block}"
        f'</style></head><body><iframe id="f" width="{width}" height="{height}" srcdoc="{escape(html, quote=True)}">'
        "</iframe><script>const f=document.getElementById('f');f.onload=()=>{const d=f.contentDocument;"
        "document.title='W='+d.documentElement.scrollWidth+' V='+f.contentWindow.innerWidth+"
        "' S='+d.querySelectorAll('svg.eb-plot').length;};</script></body></html>"
    )


def dump_dom_at(page: Path, width: int, height: int = 900) -> str:
    """Like ``dump_dom`` with a window size (at least 500 wide: see ``phone_frame``)."""
    proc = _run(["--dump-dom", "--virtual-time-budget=2000", f"--window-size={width},{height}",
                 page.resolve().as_uri()], None)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise AssertionError(f"chromium --dump-dom failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


class NetworkSpy:
    """A local TCP listener used as Chromium's proxy: it records every connection and answers none.

    A page that needs nothing from the network makes no connection; one that does (an ``<img>`` from a CDN)
    shows up here, and gets no content, just as it would offline.
    """

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.requests.append(conn.recv(4096))
                except OSError:
                    self.requests.append(b"")

    def hosts(self) -> list[str]:
        """Host of every request seen (``CONNECT host:443`` or ``GET http://host/...``)."""
        out = []
        for req in self.requests:
            parts = req.split(b" ", 2)
            if len(parts) < 2:
                out.append("?")
                continue
            authority = parts[1].decode("latin-1").split("://", 1)[-1].split("/", 1)[0]
            out.append(authority.rsplit(":", 1)[0] if ":" in authority else authority)
        return out

    def page_hosts(self) -> list[str]:
        """Hosts minus the browser's own housekeeping (time sync, account and variations checks on
        ``*.google.com``, and the component updater on update.googleapis.com, which Chromium 156 calls despite
        ``--disable-component-update``). CDNs such as fonts.googleapis.com still count."""
        return [h for h in self.hosts() if not (h == "google.com" or h.endswith(".google.com")
                                                or h == "update.googleapis.com")]

    def __enter__(self) -> NetworkSpy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


# ------------------------------------------------------------------------------------------------ PNG


def decode_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """(width, height, raw rows, bytes per pixel) for an 8-bit RGB/RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + length
    import numpy as np

    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    stride = width * bpp
    rows: list[bytes] = []
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        ftype = int(raw[start])
        line = raw[start + 1:start + 1 + stride].copy()
        if ftype == 1:  # Sub: running sum along each channel
            line = (line.reshape(-1, bpp).astype(np.int64).cumsum(axis=0) % 256).astype(np.uint8).ravel()
        elif ftype == 2:  # Up
            line = line + prev
        elif ftype in (3, 4):  # Average, Paeth: each byte depends on the one just decoded; plain Python
            cur, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
                    continue
                c = up[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            line = np.frombuffer(bytes(cur), dtype=np.uint8)
        elif ftype != 0:
            raise ValueError(f"bad PNG filter {ftype} on row {y}")
        rows.append(line.tobytes())
        prev = line
    return width, height, rows, bpp


def colour_counts(path: Path, step: int = 2, width: int | None = None) -> dict[tuple[int, int, int], int]:
    """How many (sampled) pixels have each RGB colour, in the leftmost ``width`` columns if given."""
    full_width, height, rows, bpp = decode_png(path)
    width = min(width or full_width, full_width)
    counts: dict[tuple[int, int, int], int] = {}
    for y in range(0, height, step):
        row = rows[y]
        for x in range(0, width, step):
            i = x * bpp
            key = (row[i], row[i + 1], row[i + 2])
            counts[key] = counts.get(key, 0) + 1
    return counts


def measured_frame(html: str, width: int, height: int = 2000) -> str:
    """Like ``phone_frame``, but once the frame loads the outer page writes, as JSON in ``<pre id="boxes">``, the
    rendered box of every label, legend entry and marker of each energy-vs-quality plot, and the text of every
    ``figcaption``: what Chromium really drew, with its own fonts, at ``width`` CSS pixels.

    The report's own CSP forbids scripts inside the frame; this script runs in the outer page, which reads the
    same-origin frame's DOM, so the report is measured exactly as a user gets it.
    """
    from html import escape

    script = (
        "const f=document.getElementById('f');f.onload=()=>{const d=f.contentDocument;const r=e=>{const b="
        "e.getBoundingClientRect();return [b.left,b.top,b.right,b.bottom];};const plots=[...d.querySelectorAll("
        "'svg[data-plot=pareto]')].map(s=>({width:s.getBoundingClientRect().width,labels:[...s.querySelectorAll("
        "'text.label')].map(t=>[t.textContent,r(t)]),legend:[...s.querySelectorAll('text.legend')].map(t=>"
        "t.textContent),markers:[...s.querySelectorAll('.point')].map(r)}));const out={plots:plots,captions:"
        "[...d.querySelectorAll('figcaption')].map(c=>c.textContent),glance:[...d.querySelectorAll('.card')]"
        ".map(c=>c.textContent),scroll:d.documentElement.scrollWidth,view:f.contentWindow.innerWidth};"
        "const p=document.createElement('pre');p.id='boxes';p.textContent=JSON.stringify(out);"
        "document.body.appendChild(p);};"
    )
    return (
        "<!DOCTYPE html><html><head><title>measure</title><style>body{margin:0}iframe{border:0;display:block}"
        f'</style></head><body><iframe id="f" width="{width}" height="{height}" srcdoc="{escape(html, quote=True)}">'
        f"</iframe><script>{script}</script></body></html>"
    )


def measure_report(html: str, width: int, work: Path) -> dict:
    """``measured_frame``'s JSON for ``html`` laid out ``width`` CSS pixels wide in headless Chromium."""
    import json
    import re
    from html import unescape

    page = work / f"measure-{width}.html"
    page.write_text(measured_frame(html, width), encoding="utf-8")
    dom = dump_dom_at(page, max(width + 100, 600), 2100)
    m = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    if m is None:
        raise AssertionError("the measuring script never ran: the frame did not load")
    return json.loads(unescape(m.group(1)))
