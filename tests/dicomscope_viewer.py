"""OFFIS DICOMscope (Debian ``dicomscope``), the GSPS reference viewer, on a virtual screen.

DICOMscope is built on dcmtk's presentation-state module (``dcmpstat``) and applies a
Grayscale Softcopy Presentation State to its image as the standard describes: graphic
layers, polylines and text. It has no scripting interface, so the test drives it as a
user would: Xvfb gives it a screen whose frame buffer is a file (``-fbdir``, X Window
Dump format, read with NumPy), xdotool clicks its toolbar and types into its file
dialogs. The toolbar's layout is fixed (Swing's Metal look, DICOMscope 3.6.0); the two
buttons used are named below with their screen positions.

Import as ``from dicomscope_viewer import running_dicomscope``.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loopback import wait_until
from numpy.typing import NDArray

SYSTEM_CONFIG = Path("/etc/dcmtk/DICOMscope.cfg")
WINDOW = "DICOMscope 3.6.0"
SCREEN = (1400, 1000)
# Toolbar buttons and tabs (x, y on the screen): "open image file" on every tab, "open
# presentation state file" on the viewer's toolbar once an image is loaded, and the
# "Viewer" tab (the window opens on its "Browser" tab).
OPEN_IMAGE = (28, 13)
OPEN_PRESENTATION_STATE = (101, 13)
VIEWER_TAB = (104, 41)
# Where the pointer rests while the screen is read (over the status bar, away from the image).
POINTER_REST = (700, 990)
START_TIMEOUT_S = 60.0


def read_xwd(path: Path) -> NDArray[np.uint8]:
    """An X Window Dump of a 24-bit TrueColor screen as an (H, W, 3) RGB array."""
    raw = path.read_bytes()
    header = struct.unpack(">25I", raw[:100])
    header_size, width, height = header[0], header[4], header[5]
    bits_per_pixel, bytes_per_line, colours = header[11], header[12], header[19]
    if bits_per_pixel != 32:
        raise ValueError(f"expected 32 bits per pixel, got {bits_per_pixel}")
    pixels = np.frombuffer(
        raw, dtype=np.uint8, offset=header_size + 12 * colours, count=bytes_per_line * height
    )
    bgrx = pixels.reshape(height, bytes_per_line)[:, : 4 * width].reshape(height, width, 4)
    return bgrx[..., 2::-1].copy()


@dataclass
class DicomScope:
    """A running DICOMscope on its own virtual screen."""

    display: str
    frame_buffer: Path

    def _xdotool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["xdotool", *args],
            env={**os.environ, "DISPLAY": self.display},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def _has_window(self, name: str) -> bool:
        return self._xdotool("search", "--name", f"^{re.escape(name)}$").returncode == 0

    def show_viewer(self) -> None:
        """Switch to the viewer's tab, empty (black) until an image is opened."""
        # The window opens on the browser's tab, a white list once painted.
        browser = wait_until(
            lambda: [s for s in [self.screen()] if (s == 255).all(axis=2).mean() > 0.5],
            30.0,
            "DICOMscope's browser tab",
        )[0]

        def switched() -> bool:
            # The browser's white list gives way to the viewer's black panel; a click the
            # freshly started window did not take yet is repeated.
            changed = np.abs(self.screen().astype(int) - browser).max(axis=2) > 0
            if changed.mean() > 0.3:
                return True
            self._xdotool("mousemove", *map(str, VIEWER_TAB), "click", "1")
            return False

        wait_until(switched, 30.0, "DICOMscope's viewer tab", interval_s=1.0)

    def screen(self) -> NDArray[np.uint8]:
        """What the screen shows now, RGB, with the pointer at rest."""
        self._xdotool("mousemove", *map(str, POINTER_REST))
        return read_xwd(self.frame_buffer)

    def _open(self, button: tuple[int, int], dialog: str, path: Path) -> None:
        """Click ``button``, type ``path`` into the file dialog it opens, and confirm."""

        def dialog_shown() -> bool:
            # A click the freshly started window did not take yet is repeated.
            if self._has_window(dialog):
                return True
            self._xdotool("mousemove", *map(str, button), "click", "1")
            return False

        wait_until(dialog_shown, 30.0, f"DICOMscope's '{dialog}' dialog", interval_s=3.0)
        self._xdotool("type", "--delay", "5", str(path))
        self._xdotool("key", "Return")
        wait_until(lambda: not self._has_window(dialog), 20.0, f"'{dialog}' to close")

    def open_image(self, path: Path) -> None:
        self._open(OPEN_IMAGE, "Open DICOM File", path)

    def open_presentation_state(self, path: Path) -> None:
        self._open(OPEN_PRESENTATION_STATE, "Open Presentation State", path)


def _config(folder: Path) -> Path:
    """The packaged configuration with its database and logs moved into ``folder``."""
    database = folder / "database"
    database.mkdir()
    (folder / "log").mkdir()
    text = re.sub(
        r"^Directory = /var/lib/dcmtk/db/READWRITE$",
        f"Directory = {database}",
        SYSTEM_CONFIG.read_text(),
        flags=re.MULTILINE,
    )
    config = folder / "DICOMscope.cfg"
    config.write_text(text)
    return config


@contextmanager
def running_dicomscope(folder: Path) -> Iterator[DicomScope]:
    """Xvfb on a free display and DICOMscope on it, both stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    frame_buffers = folder / "framebuffer"
    frame_buffers.mkdir()
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"),
            *("-screen", "0", "x".join(map(str, SCREEN)) + "x24", "-fbdir", str(frame_buffers)),
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=(folder / "xvfb.log").open("w"),
    )
    os.close(write_end)
    viewer = None
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        if not number.isdigit():
            xvfb.wait(10)
            raise RuntimeError(f"Xvfb did not start: {(folder / 'xvfb.log').read_text()}")
        display = f":{number}"
        scope = DicomScope(display, frame_buffers / "Xvfb_screen0")
        viewer = subprocess.Popen(
            ["dicomscope", str(_config(folder))],
            cwd=folder,
            env={**os.environ, "DISPLAY": display},
            stdout=(folder / "dicomscope.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: viewer.poll() is not None or scope._has_window(WINDOW),
            START_TIMEOUT_S,
            "DICOMscope's window",
        )
        if viewer.poll() is not None:
            raise RuntimeError(f"DICOMscope exited: {(folder / 'dicomscope.log').read_text()}")
        yield scope
    finally:
        for process in (viewer, xvfb):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
