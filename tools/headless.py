"""Open a page in headless Chromium and report what a student's browser would show: failed requests, images that do
not decode, a full-page screenshot.

Speaks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, JSON messages ending in a NUL
byte), so it needs nothing but the ``chromium`` binary (Debian: ``apt-get install chromium``) and the standard library.

    python -m tools.headless file:///path/runs/20260101-120000/index.html --screenshot /tmp/index.png
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]

# every <img>: did it load and decode (naturalWidth > 0)? plus the page's title and its visible headings
_PROBE = """JSON.stringify({
  title: document.title,
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                                                   width: i.naturalWidth, height: i.naturalHeight})),
  headings: Array.from(document.querySelectorAll('h1,h2')).map(h => h.textContent),
  tables: document.querySelectorAll('table').length,
  links: Array.from(document.links).map(a => a.href)})"""


def find_chromium() -> str | None:
    """The Chromium binary on PATH (Debian's ``chromium``, or ``chromium-browser``/``google-chrome``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    url: str
    title: str = ""
    failed: list[str] = field(default_factory=list)  # "URL (reason)" for every request that failed or got >= 400
    requested: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # {"src", "ok", "width", "height"}
    headings: list[str] = field(default_factory=list)
    tables: int = 0
    links: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int):
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.next_id, self.buffer, self.events = 0, b"", []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()})")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 20.0):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return self.events.pop()


def open_page(url: str, screenshot: Path | str | None = None, width: int = 1200, chromium: str | None = None,
              timeout: float = 20.0) -> PageReport:
    """Load ``url`` in a fresh headless Chromium (new empty profile), wait for its load event, and report.

    ``screenshot``: write a full-page PNG there. Raises FileNotFoundError when no Chromium is installed.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium on PATH (Debian: apt-get install chromium)")
    started = time.monotonic()
    report = PageReport(url)
    with tempfile.TemporaryDirectory(prefix="esc-chromium-") as profile:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        def wire_fds():  # the child reads commands on fd 3 and writes replies on fd 4
            read, write = os.dup(to_child_r), os.dup(from_child_w)  # above 4, so dup2 never copies onto itself
            os.dup2(read, 3)  # dup2 makes 3 and 4 inheritable (os.pipe's ends are close-on-exec)
            os.dup2(write, 4)

        proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900",
                                 "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=None if os.environ.get("ESC_CHROMIUM_LOG") else subprocess.DEVNULL, preexec_fn=wire_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        pipe = _Pipe(proc, to_child_w, from_child_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Network.enable", "Page.enable", "Runtime.enable"):
                pipe.call(domain, session=session)
            pipe.call("Page.navigate", {"url": url}, session=session)
            pipe.wait_for("Page.loadEventFired", timeout=timeout)
            probe = pipe.call("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                              session=session)["result"]["value"]
            for key, value in json.loads(probe).items():
                setattr(report, key, value)
            if screenshot is not None:
                size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
                shot = pipe.call("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000), "scale": 1}},
                    session=session)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            urls = {}  # requestId -> URL
            for event in pipe.events:
                params = event.get("params", {})
                if event.get("method") == "Network.requestWillBeSent":
                    urls[params["requestId"]] = params["request"]["url"]
                    report.requested.append(params["request"]["url"])
                elif event.get("method") == "Network.loadingFailed":
                    url = urls.get(params.get("requestId"), params.get("requestId"))
                    report.failed.append(f"{url} ({params.get('errorText')})")
                elif event.get("method") == "Network.responseReceived" and params["response"].get("status", 0) >= 400:
                    report.failed.append(f"{params['response']['url']} (HTTP {params['response']['status']})")
            pipe.call("Browser.close")
        finally:
            os.close(to_child_w)
            os.close(from_child_r)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--screenshot", help="write a full-page PNG here")
    args = parser.parse_args(argv)
    try:
        report = open_page(args.url, args.screenshot)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bad = [i["src"] for i in report.images if not i["ok"]]
    print(f"{report.title!r}: {len(report.requested)} requests, {len(report.images)} images, "
          f"{report.tables} tables, {report.seconds:.1f} s")
    for line in report.failed:
        print(f"FAILED {line}")
    for src in bad:
        print(f"NOT DECODED {src}")
    return 1 if report.failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
