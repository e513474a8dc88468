#!/usr/bin/env python3
"""Drives the gateway's admin web page in headless Chromium over the DevTools protocol.

  webpage_check.py URL SCREENSHOT [--approve] [--timeout SECONDS]

Opens URL (the page link `agentgate dev` prints; the page logs in through the OIDC issuer,
following its redirects, or takes a break-glass #token=...), waits until the page lists
at least one session row, optionally waits for a pending approval and clicks its Approve
button, then saves a PNG screenshot. Prints one JSON object: the session ids and approval ids
the page showed, what was clicked, and the page's error text. Exits 1 when the page never
showed what was asked. Needs `chromium` (Debian) and websocket-client (pip).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import base64

import websocket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return None


def main():
    args = sys.argv[1:]
    approve = "--approve" in args
    timeout = 30.0
    if "--timeout" in args:
        timeout = float(args[args.index("--timeout") + 1])
    positional = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--timeout")]
    url, screenshot = positional[0], positional[1]

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("webpage_check: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    port = free_port()
    profile = tempfile.mkdtemp(prefix="agentgate-chromium-")
    process = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                                "--window-size=1280,900", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = {"sessions": [], "approvals": [], "clicked": None, "error": ""}
    ok = False
    try:
        targets = None
        deadline = time.time() + 30
        while time.time() < deadline and not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
                    targets = [t for t in json.load(response) if t.get("type") == "page"]
            except OSError:
                time.sleep(0.2)
        if not targets:
            raise RuntimeError("chromium did not open its DevTools port")
        page = Page(targets[0]["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=url)
        sessions = page.wait_for("[...document.querySelectorAll('[data-session]')].map(r => r.dataset.session)", timeout)
        report["sessions"] = sessions or []
        ok = bool(sessions)
        if ok and approve:
            approvals = page.wait_for("[...document.querySelectorAll('[data-approve]')].map(b => b.dataset.approve)", timeout)
            report["approvals"] = approvals or []
            if approvals:
                page.evaluate(f"document.querySelector('[data-reason=\"{approvals[0]}\"]').value = 'approved from the web page'")
                page.evaluate(f"document.querySelector('[data-approve=\"{approvals[0]}\"]').click()")
                report["clicked"] = approvals[0]
                gone = page.wait_for(f"!document.querySelector('[data-approve=\"{approvals[0]}\"]')", timeout)
                ok = bool(gone)
            else:
                ok = False
        # Open the first session, so the screenshot shows its exchanges too.
        if report["sessions"]:
            page.evaluate("document.querySelector('[data-session]').click()")
            page.wait_for("document.querySelectorAll('[data-exchange]').length > 0", 10)
        report["error"] = page.evaluate("document.getElementById('error') ? document.getElementById('error').textContent : ''") or ""
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    except Exception as error:  # reported, and the exit status says it failed
        report["error"] = f"{type(error).__name__}: {error}"
        ok = False
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
