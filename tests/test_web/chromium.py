"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

Just enough CDP for the dashboard tests: open a page, wait for it to load, type into a
field and click a button with real input events, read an element's box, take a screenshot.
Chromium runs with a fresh profile in the test's folder and reaches nothing but loopback.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from loopback import stop_process, wait_until
from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)
# Without a GPU: none for the dashboard's pages; WebGL in software (SwiftShader) for a
# viewer that draws with it (OHIF's cornerstone3D).
NO_GPU = ("--disable-gpu",)
SOFTWARE_WEBGL = (
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
)
EVENT_TIMEOUT_S = 60.0


def chromium_program() -> str:
    """The installed Chromium (scripts/install-system-packages.sh installs it)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("chromium is not installed (scripts/install-system-packages.sh)")


class Chromium:
    """One headless browser with one page (tab), closed on exit."""

    def __init__(
        self, profile: Path, width: int = 1280, height: int = 900, webgl: bool = False
    ) -> None:
        self.profile = profile
        self.gpu_flags = SOFTWARE_WEBGL if webgl else NO_GPU
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: ClientConnection | None = None
        self._session: str | None = None
        self._events: list[dict[str, Any]] = []
        self._log: IO[bytes] | None = None
        self._stack = ExitStack()

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        self._log = (self.profile.parent / "chromium.log").open("wb")
        self._process = subprocess.Popen(
            [
                chromium_program(),
                *FLAGS,
                *self.gpu_flags,
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        port_file = self.profile / "DevToolsActivePort"
        wait_until(lambda: port_file.is_file() and len(port_file.read_text().split()) == 2,
                   timeout_s=60.0, what="Chromium's DevTools port")  # fmt: skip
        port, path = port_file.read_text().split()
        self._socket = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 2**20)
        )
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.page("Page.enable")
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stack.close()
        if self._process is not None:
            stop_process(self._process)
        if self._log is not None:
            self._log.close()

    def _call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        assert self._socket is not None
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            reply = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            if "method" in reply:
                self._events.append(reply)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command to the page."""
        return self._call(method, self._session, **params)

    def _wait_event(self, method: str) -> dict[str, Any]:
        assert self._socket is not None
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method:
                    return self._events.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {EVENT_TIMEOUT_S} s")
            self._events.append(json.loads(self._socket.recv(timeout=remaining)))

    def goto(self, url: str) -> None:
        """Open ``url`` and wait until it (images included) has loaded."""
        self._events.clear()
        self.page("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools, not the page's CSP)."""
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def box(self, selector: str) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the first element matching ``selector``, in CSS pixels."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
        )
        if found is None:
            raise LookupError(f"no element {selector!r} on {self.url()}")
        x, y, width, height = found
        return float(x), float(y), float(width), float(height)

    def type_into(self, selector: str, text: str) -> None:
        """Click a field and type ``text`` as a person would."""
        self.click(selector)
        self.page("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        x, y, width, height = self.box(selector)
        centre = {"x": x + width / 2, "y": y + height / 2}
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, button="left", clickCount=1, **centre)

    def submit_and_wait(self, selector: str) -> None:
        """Click a submit button and wait for the next page to load."""
        self._events.clear()
        self.click(selector)
        self._wait_event("Page.loadEventFired")

    def url(self) -> str:
        """The page's address now."""
        return str(self.evaluate("location.href"))

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Write a PNG of the viewport (or the whole page) to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.page("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
