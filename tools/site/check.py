#!/usr/bin/env python3
"""Check the built course site in a real browser (./lab site --check).

    tools/site/check.py [--site site] [--shots runs/site]

Serves site/ on 127.0.0.1 (a free port), starts headless Chromium (Debian's chromium) and drives
it over the DevTools protocol (python3-websocket), loading every page of the site. It fails on:
  - an internal link whose target does not load (HTTP status other than 200), or whose #anchor is
    not an id on the target page;
  - an <img> whose naturalWidth is 0 (missing or undecodable);
  - math left unrendered: raw $$ in the text outside code, a formula element (.arithmatex) without
    its .katex rendering, a KaTeX parse error, or a page with formulas and no .katex element;
  - any console error or uncaught exception (a failed load of a script, style, font or image
    included: the site must need no network);
  - the site search returning nothing for "attention".
It prints what it checked (pages, links, images, formulas) and saves screenshots of the home
page and lessons 08 and 12 (the top of the page, its first formula and its first figure) in
--shots, for a person to look at. Exit status 1 on any failure.
"""
import argparse
import base64
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import websocket  # python3-websocket (websocket-client)

SHOTS = {"index.html": "home", "lessons/08_bahdanau/index.html": "08_bahdanau",
         "lessons/12_showdown/index.html": "12_showdown"}
WIDTH, HEIGHT = 1280, 1400

# Run in the page after it loaded: what it links to, its images, its formulas, its ids.
PAGE_PROBE = r"""
(() => {
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const imgs = [...document.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, complete: i.complete}));
  const body = document.querySelector('.md-content') || document.body;
  const clone = body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .katex').forEach(e => e.remove());
  const text = clone.textContent;
  const arith = [...document.querySelectorAll('.arithmatex')];
  return {
    title: document.title,
    links, imgs,
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    arithmatex: arith.length,
    unrendered: arith.filter(e => !e.querySelector('.katex')).map(e => e.textContent.slice(0, 80)),
    katex: document.querySelectorAll('.katex').length,
    katex_display: document.querySelectorAll('.katex-display').length,
    katex_errors: [...document.querySelectorAll('.katex-error')].map(e => e.textContent.slice(0, 80)),
    raw_dollars: (text.match(/\$\$/g) || []).length,
    raw_delims: (text.match(/\\\(|\\\[/g) || []).length,
  };
})()
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser dropped a connection: fine
            super().handle_error(request, client_address)


def serve(site: Path):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Headless Chromium, one tab, spoken to over the DevTools protocol."""

    def __init__(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            sys.exit("check.py: chromium not found (./lab site --check installs Debian's chromium)")
        self.profile = tempfile.mkdtemp(prefix="attnlab-site-chromium-")
        port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--disable-sync", "--disable-background-networking",
             "--disable-component-update", "--disable-default-apps", "--mute-audio",
             f"--window-size={WIDTH},{HEIGHT}", f"--remote-debugging-port={port}",
             "--remote-allow-origins=*", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    tabs = [t for t in json.load(r) if t.get("type") == "page"]
                if tabs:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                sys.exit("check.py: chromium did not start its DevTools endpoint within 60 s")
            time.sleep(0.2)
        self.ws = websocket.create_connection(tabs[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method, params=None):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds):
        """Collect events for a while (late console errors, fonts loading)."""
        end = time.time() + seconds
        self.ws.settimeout(0.1)
        try:
            while time.time() < end:
                try:
                    msg = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if "method" in msg:
                    self.events.append(msg)
        finally:
            self.ws.settimeout(60)

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate: {r['exceptionDetails']}")
        return r["result"].get("value")

    def load(self, url):
        self.events = []
        self.call("Page.navigate", {"url": url})
        deadline = time.time() + 30
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.time() > deadline:
                raise RuntimeError(f"{url}: no load event within 30 s")
            self.pump(0.2)
        self.pump(0.5)
        while self.evaluate("document.readyState") != "complete" or not self.evaluate("document.fonts.status === 'loaded'"):
            self.pump(0.2)

    def errors(self):
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("uncaught: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                en = p["entry"]
                out.append(f"{en.get('source', 'log')}: {en.get('text', '')} {en.get('url', '')}".strip())
        return out

    def screenshot(self, path: Path, scroll_js=None):
        if scroll_js:
            self.evaluate(scroll_js)
            self.pump(0.3)
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def status_of(url, cache):
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                cache[url] = r.status
        except urllib.error.HTTPError as e:
            cache[url] = e.code
        except (urllib.error.URLError, OSError) as e:
            cache[url] = str(e)
    return cache[url]


def search(browser, base, word):
    """Type WORD into Material's search box on the home page; the number of results it lists."""
    browser.load(base + "index.html")
    browser.evaluate("document.querySelector('#__search').checked = true; document.querySelector('.md-search__input').focus()")
    browser.call("Input.insertText", {"text": word})
    deadline = time.time() + 20
    count = 0
    while time.time() < deadline:
        browser.pump(0.3)
        count = browser.evaluate("document.querySelectorAll('.md-search-result__item').length")
        if count:
            break
    meta = browser.evaluate("(document.querySelector('.md-search-result__meta') || {}).textContent || ''")
    return count, meta.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--site", default=str(root / "site"))
    ap.add_argument("--shots", default=str(root / "runs" / "site"))
    args = ap.parse_args()
    site, shots = Path(args.site), Path(args.shots)
    if not (site / "index.html").is_file():
        sys.exit(f"check.py: {site}/index.html not found: build the site first (./lab site)")
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    pages.sort(key=lambda p: (p != "index.html", p))

    httpd, base = serve(site)
    browser = Browser()
    failures, seen, statuses = [], {}, {}
    n_links = n_imgs = n_katex = n_formulas = 0
    t0 = time.time()
    try:
        for page in pages:
            url = base + page
            browser.load(url)
            info = browser.evaluate(PAGE_PROBE)
            seen[url] = info
            fail = lambda what: failures.append(f"{page}: {what}")
            for err in browser.errors():
                fail(err.split("\n")[0])  # the message, not its stack
            for img in info["imgs"]:
                n_imgs += 1
                if not img["w"]:
                    fail(f"image not shown (naturalWidth 0): {img['src']}")
            n_formulas += info["arithmatex"]
            n_katex += info["katex"]
            if info["arithmatex"] and not info["katex"]:
                fail(f"{info['arithmatex']} formulas and no .katex element")
            for u in info["unrendered"]:
                fail(f"formula not rendered: {u}")
            for u in info["katex_errors"]:
                fail(f"KaTeX error: {u}")
            if info["raw_dollars"]:
                fail(f"raw $$ in the text outside code ({info['raw_dollars']} times)")
            if info["raw_delims"]:
                fail(f"raw \\( or \\[ in the text outside code ({info['raw_delims']} times)")
            if page in SHOTS:
                name = SHOTS[page]
                browser.screenshot(shots / f"{name}.png", "window.scrollTo(0, 0)")
                first_math = "const m = document.querySelector('.md-content .katex-display') || document.querySelector('.md-content .katex');"
                browser.screenshot(shots / f"{name}_math.png",
                                   first_math + " if (m) { m.scrollIntoView({block: 'center'}); }")
                browser.screenshot(shots / f"{name}_figure.png",
                                   "const f = document.querySelector('.md-content img'); if (f) { f.scrollIntoView({block: 'center'}); }")

        # Links: every internal target loads, and its #anchor exists there.
        checked = set()
        for page_url, info in seen.items():
            page = page_url[len(base):]
            for href in info["links"]:
                if not href.startswith(base):
                    continue
                target, _, frag = href.partition("#")
                if (target, frag) in checked:
                    continue
                checked.add((target, frag))
                n_links += 1
                if target.endswith("/"):
                    target += "index.html"
                st = statuses.get(target) or status_of(target, statuses)
                if st != 200:
                    failures.append(f"{page}: broken link {href} ({st})")
                elif frag and target in seen and frag not in seen[target]["ids"]:
                    failures.append(f"{page}: broken anchor {href} (no id '{frag}' on {target[len(base):]})")

        count, meta = search(browser, base, "attention")
        for err in browser.errors():
            failures.append(f"search: {err}")
        if not count:
            failures.append(f"search for 'attention' returned nothing ({meta or 'no result list'})")
    finally:
        browser.close()
        httpd.shutdown()

    print(f"[site] checked in headless Chromium ({time.time() - t0:.0f} s): {len(pages)} pages, "
          f"{n_links} internal links (with anchors), {n_imgs} images, {n_formulas} formulas "
          f"({n_katex} KaTeX elements), search 'attention': {count} results ({meta})", file=sys.stderr)
    print(f"[site] screenshots: " + ", ".join(str(shots / f"{n}{s}.png") for n in SHOTS.values()
                                             for s in ("", "_math", "_figure")), file=sys.stderr)
    if failures:
        for f in failures:
            print(f"[site] FAIL {f}", file=sys.stderr)
        print(f"[site] {len(failures)} failures", file=sys.stderr)
        sys.exit(1)
    print("[site] check passed: no broken link or image, every formula rendered, no console error", file=sys.stderr)


if __name__ == "__main__":
    main()
