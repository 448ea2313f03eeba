"""A small Chrome DevTools Protocol client over `--remote-debugging-pipe`, to drive Debian's
headless Chromium like a person would (focus a field, type, click), with nothing to install: the
protocol is JSON messages ending in a NUL byte, on the browser's file descriptors 3 (in) and 4
(out). The browser is kept on loopback (REFERENCE.md §5): every name but localhost and
127.0.0.1 fails to resolve, and its background traffic is off."""

import json
import os
import select
import shutil
import subprocess
import tempfile

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-pipe",
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
]


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page, driven synchronously (call from a thread)."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._events = []
        self._next_id = 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.page("Page.enable")

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.profile.cleanup()

    def _read(self):
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"Chromium sent nothing for {self.timeout} s")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise EOFError("Chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._events.append(answer)

    def page(self, method, params=None):
        return self.call(method, params, self.session)

    def wait_for(self, event):
        """The next `event` of the page (one already received counts)."""
        while True:
            for i, seen in enumerate(self._events):
                if seen.get("method") == event and seen.get("sessionId") == self.session:
                    return self._events.pop(i)
            self._events.append(self._read())

    def open(self, url):
        """Navigates and waits for the page to load."""
        self._events.clear()
        self.page("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def node(self, selector):
        root = self.page("DOM.getDocument")["root"]["nodeId"]
        node = self.page("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise LookupError(f"no {selector!r} on the page")
        return node

    def text(self):
        root = self.page("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        return self.page("DOM.getOuterHTML", {"nodeId": root})["outerHTML"]

    def type_into(self, selector, text):
        """Focuses the field and types `text` at its end, as keystrokes would."""
        self.page("DOM.focus", {"nodeId": self.node(selector)})
        self.page("Input.insertText", {"text": text})

    def click(self, selector):
        quad = self.page("DOM.getBoxModel", {"nodeId": self.node(selector)})["model"]["content"]
        x, y = (quad[0] + quad[4]) / 2, (quad[1] + quad[5]) / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
