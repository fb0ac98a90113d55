"""Tests of the collector: glcic_jax.dataset.collect, glcic_jax.dataset.download, experiments/collect_faces.py.

Everything talks to an HTTP server the test runs on 127.0.0.1: a fake image
search whose results appear as the page is scrolled, generated images, a
broken link, a page posing as an image, an oversized file, a flaky URL and a
duplicate. The browser tests also map every host name to nothing in
Chromium, so no test can reach another address. They skip when Debian's
chromium / chromium-driver are not installed.
"""

import http.server
import io
import json
import os
import pathlib
import subprocess
import sys
import threading
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from glcic_jax.dataset import collect, download

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_BYTES = 60_000
NO_OTHER_HOSTS = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>results</title></head>
<body><h1>results for QUERY</h1><div id="results"></div><script>
const all = URLS;
let shown = 0, pending = false;
function more() {
  const end = Math.min(shown + 4, all.length);
  for (; shown < end; shown++) {
    const d = document.createElement("div");
    d.className = "result"; d.style.height = "700px";
    const img = document.createElement("img");
    img.src = "/thumb.png"; img.setAttribute("data-full", all[shown]);
    d.appendChild(img); document.getElementById("results").appendChild(d);
  }
}
more();
window.addEventListener("scroll", () => {
  if (pending || window.innerHeight + window.scrollY < document.body.offsetHeight - 50) return;
  pending = true;
  setTimeout(() => { more(); pending = false; }, 150);  // Results arrive lazily.
});
</script></body></html>"""


def _jpeg(seed, size=64):
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


GOOD = [f"/img/{i}.jpg" for i in range(8)]
# In page order: good images interleaved with every kind of failure.
RESULTS = [
    *GOOD[:3],
    "/missing.jpg",  # 404
    "/page.jpg",  # text/html
    "/big.jpg",  # over MAX_BYTES, announced
    "/big_stream.jpg",  # over MAX_BYTES, no Content-Length
    "/flaky.jpg",  # 503 once, then fine
    *GOOD[3:],
    "/copy.jpg",  # same bytes as /img/0.jpg
    "/fake.jpg",  # image/jpeg that is not an image
    "data:image/png;base64,AAAA",  # not http(s): never a candidate
    "file:///etc/passwd",
    "/img/0.jpg",  # repeated result
]


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "FakeSearch/1.0"

    def log_message(self, *args):
        del args

    def _send(self, body, ctype, length=True, code=200):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        state = self.server.state
        state["hits"][url.path] = state["hits"].get(url.path, 0) + 1
        if url.path == "/search":
            query = urllib.parse.parse_qs(url.query)["q"][0]
            state["queries"].append(query)
            page = _PAGE.replace("QUERY", query).replace("URLS", json.dumps(RESULTS))
            return self._send(page.encode(), "text/html; charset=utf-8")
        if url.path.startswith("/img/"):
            return self._send(_jpeg(int(url.path[5:-4])), "image/jpeg")
        if url.path == "/copy.jpg":
            return self._send(_jpeg(0), "image/jpeg; charset=binary")
        if url.path == "/thumb.png":
            return self._send(_png_thumb(), "image/png")
        if url.path == "/page.jpg":
            return self._send(b"<html>not an image</html>", "text/html")
        if url.path == "/big.jpg":
            return self._send(_jpeg(1, size=400), "image/jpeg")
        if url.path == "/big_stream.jpg":
            return self._send(_jpeg(2, size=400), "image/jpeg", length=False)
        if url.path == "/fake.jpg":
            return self._send(b"GIF89a but truncated garbage", "image/jpeg")
        if url.path == "/flaky.jpg":
            if state["hits"][url.path] == 1:
                return self._send(b"busy", "text/plain", code=503)
            return self._send(_jpeg(50), "image/jpeg")
        return self._send(b"not found", "text/plain", code=404)


def _png_thumb():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def server():
    """The fake search site on 127.0.0.1 (a free port); yields (base URL, state)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = {"hits": {}, "queries": []}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state
    httpd.shutdown()
    httpd.server_close()


def _site(base):
    return collect.SearchSite(
        name="local",
        search_url=base + "/search?q={query}",
        result_selector=".result img",
        url_attribute="data-full",
        scroll_pause_s=0.3,
        max_idle_scrolls=2,
    )


POLICY = download.Policy(timeout_s=5.0, retries=1, backoff_s=0.0, max_bytes=MAX_BYTES)
EXPECTED = {
    "/missing.jpg": "http_error",
    "/page.jpg": "bad_type",
    "/big.jpg": "too_large",
    "/big_stream.jpg": "too_large",
    "/flaky.jpg": "ok",
    "/copy.jpg": "duplicate",
    "/fake.jpg": "not_image",
    **{path: "ok" for path in GOOD},
}


def _check_downloads(store, base):
    records = store.downloads()
    assert {url[len(base) :]: r["status"] for url, r in records.items()} == EXPECTED
    files = sorted(p.name for p in store.images.iterdir())
    assert len(files) == len(GOOD) + 1  # + flaky; the duplicate is not stored twice.
    assert records[base + "/copy.jpg"]["file"] == records[base + "/img/0.jpg"]["file"]
    for r in records.values():
        if r["status"] == "ok":
            assert Image.open(store.root / r["file"]).size == (64, 64)


def test_result_urls():
    site = collect.SearchSite("s", "http://x/?q={query}", "a", "m", url_json_key="murl")
    values = [
        json.dumps({"murl": "https://img.example/a.jpg"}),
        "not json",
        None,
        json.dumps({"murl": "/rel.png"}),
        json.dumps({"murl": "https://img.example/a.jpg"}),
        json.dumps({"murl": "javascript:alert(1)"}),
    ]
    urls = collect.result_urls(values, site, "http://host/search?q=1")
    assert urls == ["https://img.example/a.jpg", "http://host/rel.png"]


def test_load_site(tmp_path):
    assert collect.load_site("bing").url_json_key == "murl"
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps({"name": "x", "search_url": "http://h/{query}", "result_selector": "img"})
    )
    assert collect.load_site(str(path)).result_selector == "img"
    path.write_text(json.dumps({"name": "x"}))
    with pytest.raises(collect.CollectError, match="bad site file"):
        collect.load_site(str(path))
    with pytest.raises(collect.CollectError, match="unknown site"):
        collect.load_site("altavista")


def test_download_all_checks_and_resumes(server, tmp_path):
    base, state = server
    store = download.Collection(tmp_path / "raw")
    urls = [base + p for p in RESULTS if p.startswith("/")]
    urls.append("http://127.0.0.1:1/refused.jpg")  # Nothing listens on port 1.
    assert store.add_candidates("q", urls) == len(urls) - 1  # The repeat counts once.
    assert store.add_candidates("q", urls[:3]) == 0

    counts = download.download_all(store, POLICY, sleep=lambda s: None)
    assert counts["ok"] == len(GOOD) + 1 and counts["failed"] == 1
    records = download.Collection(tmp_path / "raw").downloads()  # As a new run reads it.
    refused = records.pop("http://127.0.0.1:1/refused.jpg")
    assert refused["status"] == "failed" and refused["error"]
    assert {url[len(base) :]: r["status"] for url, r in records.items()} == EXPECTED
    assert len(list(store.images.iterdir())) == len(GOOD) + 1  # The copy is not stored.
    assert state["hits"]["/flaky.jpg"] == 2  # Retried once after the 503.

    # Resume: only the transient failure is tried again; nothing is fetched twice.
    hits = dict(state["hits"])
    again = download.download_all(store, POLICY, sleep=lambda s: None)
    assert again == {"skipped": len(urls) - 2, "failed": 1}
    assert state["hits"] == hits
    assert not list(store.images.glob(".*.part"))


def test_fetch_refuses_other_schemes():
    with pytest.raises(download.Refused) as e:
        download.fetch("file:///etc/passwd", POLICY)
    assert e.value.status == "bad_url"


def _need_browser():
    missing = [p for p in (collect.CHROMIUM, collect.CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: apt-get install -y chromium chromium-driver"
        )


def test_search_scrolls_for_lazy_results(server):
    _need_browser()
    base, state = server
    site = _site(base)
    with collect.chromium(extra_args=(NO_OTHER_HOSTS,)) as driver:
        urls = collect.search(driver, site, "日本人 顔", n=10)
        assert state["queries"] == ["日本人 顔"]
        # Only 4 results exist before the first scroll.
        assert urls == [base + p for p in RESULTS[:10]]
        everything = collect.search(driver, site, "俳優", n=100)
    http_results = [base + p for p in dict.fromkeys(RESULTS) if p.startswith("/")]
    assert everything == http_results


def test_collect_faces_script_end_to_end(server, tmp_path):
    _need_browser()
    base, state = server
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(_site(base).__dict__))
    out = tmp_path / "raw"
    args = [
        sys.executable,
        str(REPO / "experiments" / "collect_faces.py"),
        f"--out={out}",
        f"--site={site_file}",
        "--queries=日本人 顔,女優",
        "--per_query=100",
        "--timeout=5",
        "--retries=1",
        f"--max_bytes={MAX_BYTES}",
        f"--chromium_arg={NO_OTHER_HOSTS}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert state["queries"] == ["日本人 顔", "女優"]
    store = download.Collection(out)
    assert len(store.candidates()) == len(EXPECTED)  # The second query found nothing new.
    _check_downloads(store, base)

    # A second run resumes: the first query has enough candidates, so no
    # browser starts, and every URL already has a final status.
    hits = dict(state["hits"])
    args[4:6] = ["--queries=日本人 顔", "--per_query=10"]
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"skipped": len(EXPECTED)}
    assert state["hits"] == hits


def test_chromium_missing_is_a_clear_error(tmp_path):
    with pytest.raises(collect.CollectError, match="apt-get install -y chromium"):
        with collect.chromium(chromium_path=str(tmp_path / "no-chromium")):
            pass
