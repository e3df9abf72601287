"""A person in a real browser: headless Chromium logs in, reads a processed radiograph with
its bones outlined, and retries a dead dispatch. Screenshots go to the test's folder and to
``<basetemp>/screenshots`` for the record; the overlay's colours are counted in them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from chromium import Chromium
from PIL import Image
from web_testing import ADMIN, VIEWER, WebNode

from dicom_node.admin.instance_results import instance_results
from dicom_node.db import DispatchState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.derived.segmentation import DISPLAY_COLOURS, BonePart
from dicom_node.web.app import create_app
from dicom_node.web.images import read_segments
from dicom_node.web.server import WebServer

# A screen pixel counts as an outline's colour within this distance (PNG is lossless, but
# the browser scales the image to the page).
COLOUR_TOLERANCE = 40
MIN_OUTLINE_PIXELS = 30


def _served(node: WebNode) -> WebServer:
    server = WebServer(create_app(node.context()), node.settings.web)
    server.start()
    return server


def colour_pixels(picture: np.ndarray, colour: tuple[int, int, int]) -> int:
    """How many pixels of an RGB picture are within the tolerance of ``colour``."""
    distance = np.abs(picture[..., :3].astype(int) - np.array(colour)).max(axis=2)
    return int((distance <= COLOUR_TOLERANCE).sum())


def stored_parts(node: WebNode) -> dict[BonePart, bool]:
    """Which parts the stored Segmentation of the processed radiograph has any pixel of."""
    assert node.processed_instance_id is not None
    details = instance_results(node.database, node.processed_instance_id)
    assert details is not None
    seg = next(Path(o["path"]) for o in details["outputs"] if o["kind"] == "seg")
    segments = read_segments(seg)
    return {part: any(s.mask.any() for s in segments if s.part is part) for part in BonePart}


def _log_in(browser: Chromium, name: str, password: str) -> None:
    browser.type_into("#name", name)
    browser.type_into("#password", password)
    browser.submit_and_wait("#submit")


def test_a_person_logs_in_and_sees_the_bones_outlined(
    processed_node: WebNode, tmp_path: Path, record: list[Path]
) -> None:
    instance = processed_node.processed_instance_id
    server = _served(processed_node)
    try:
        with Chromium(tmp_path / "profile") as browser:
            browser.goto(f"{server.url}instances/{instance}")
            assert "/login?next=%2Finstances%2F" in browser.url()
            record.append(browser.screenshot(tmp_path / "web-login.png"))
            _log_in(browser, VIEWER[0], VIEWER[2])
            assert browser.url() == f"{server.url}instances/{instance}"
            x, y, width, height = browser.box("#overlay")
            assert width > 300 and height > 300  # the picture loaded and has its size
            shot = browser.screenshot(tmp_path / "web-result-overlay.png")
            record.append(shot)
            record.append(browser.screenshot(tmp_path / "web-result-page.png", full_page=True))
            browser.box("#joint-MCP2-L")
            record.append(browser.screenshot(tmp_path / "web-result-joint.png"))
            joints = browser.evaluate("document.querySelectorAll('.joint').length")
            numbers = browser.evaluate("document.querySelector('#joint-MCP2-L table').innerText")
            layer_sizes = browser.evaluate(
                "[...document.querySelectorAll('#joint-MCP2-L img')].map(i => i.naturalWidth)"
            )
    finally:
        server.stop()
    screen = np.asarray(Image.open(shot).convert("RGB"))
    # The part of the picture inside the viewport (it is taller than the window).
    top, bottom = max(0, round(y)), min(screen.shape[0], round(y + height))
    left, right = max(0, round(x)), min(screen.shape[1], round(x + width))
    assert bottom - top > 300
    inside = screen[top:bottom, left:right]
    counts = {part: colour_pixels(inside, DISPLAY_COLOURS[part]) for part in BonePart}
    # Each part is outlined exactly when the stored Segmentation has some of it (this
    # child's joints have open growth plates: no overlap, so no yellow).
    drawn = {part: count >= MIN_OUTLINE_PIXELS for part, count in counts.items()}
    assert drawn == stored_parts(processed_node), counts
    assert drawn[BonePart.UPPER] and drawn[BonePart.LOWER]
    # Baseline: a page without the picture (the login form) has none of these colours.
    login = np.asarray(Image.open(tmp_path / "web-login.png").convert("RGB"))
    assert all(colour_pixels(login, DISPLAY_COLOURS[part]) == 0 for part in BonePart)
    assert joints == 5  # the five MCP joints of the one hand
    assert "Area" in numbers and "dB" in numbers
    assert len(layer_sizes) == 4 and all(size > 0 for size in layer_sizes)  # region + 3 layers


def test_an_admin_retries_a_dead_dispatch_in_the_browser(
    web_node: WebNode, tmp_path: Path, record: list[Path]
) -> None:
    server = _served(web_node)
    try:
        with Chromium(tmp_path / "profile") as browser:
            browser.goto(f"{server.url}dispatches?state=dead")
            _log_in(browser, ADMIN[0], ADMIN[2])
            assert browser.url().endswith("/dispatches?state=dead")
            record.append(browser.screenshot(tmp_path / "web-dead-letters.png"))
            browser.submit_and_wait(
                f"form[action='/dispatches/{web_node.dead_dispatch_id}/retry'] button"
            )
            notice = browser.evaluate("document.querySelector('.notice').innerText")
            record.append(browser.screenshot(tmp_path / "web-dispatch-retried.png"))
    finally:
        server.stop()
    assert notice == f"Dispatch {web_node.dead_dispatch_id}: revived [{web_node.dead_dispatch_id}]."
    with web_node.database.reader() as session:
        dispatch = dispatch_rows.get_dispatch(session, web_node.dead_dispatch_id)
        assert dispatch is not None and dispatch.state is DispatchState.PENDING
