"""The downloader against hostile URLs and servers: every case ends in a recorded status, in time.

All traffic goes to a server this test runs on 127.0.0.1.
"""

import http.server
import io
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from glcic_jax.dataset import download


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 120, 90)).save(buf, format="PNG")
    return buf.getvalue()


class _Hostile(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        if self.path == "/drip.png":  # a byte every 0.3 s: 1,000 bytes would take 5 minutes
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:  # the client gave up, as it should
                pass
            return
        if self.path == "/to-ftp.png":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/x.png")
            self.end_headers()
            return
        if self.path == "/to-face.png":
            self.send_response(302)
            self.send_header("Location", "/%E9%A1%94.png")
            self.end_headers()
            return
        body = _png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Hostile.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


FAST = download.Policy(timeout_s=1.0, deadline_s=2.0, retries=0)


def test_a_dripping_server_meets_the_deadline(server):
    start = time.monotonic()
    with pytest.raises(OSError, match="transfer took over 2.0 s"):
        download.fetch(f"{server}/drip.png", FAST)
    assert time.monotonic() - start < 4.0


def test_a_redirect_to_another_scheme_is_refused(server):
    with pytest.raises(download.Refused, match="not an http") as e:
        download.fetch(f"{server}/to-ftp.png", FAST)
    assert e.value.status == "bad_url"


def test_international_paths_are_percent_encoded(server):
    body, ctype = download.fetch(f"{server}/顔.png", FAST)
    assert ctype == "image/png" and body == _png()
    download.fetch(f"{server}/to-face.png", FAST)  # a redirect to an encoded path is followed
    assert _Hostile.seen == ["/%E9%A1%94.png", "/to-face.png", "/%E9%A1%94.png"]


def test_international_hosts_are_idna_encoded():
    assert download.encode_url("http://例え.jp/顔.jpg") == "http://xn--r8jz45g.jp/%E9%A1%94.jpg"
    assert download.encode_url("HTTPS://Example.com/a b.jpg?q=顔#x") == (
        "https://example.com/a%20b.jpg?q=%E9%A1%94"
    )
    assert download.encode_url("http://[::1]:8080/a%20b.jpg") == "http://[::1]:8080/a%20b.jpg"


def test_a_malformed_candidate_is_recorded_and_the_collection_goes_on(server, tmp_path):
    collection = download.Collection(tmp_path)
    bad = ["http://[::1/x.jpg", "ftp://127.0.0.1/y.jpg", "http:///z.jpg", "javascript:alert(1)"]
    collection.add_candidates("q", [*bad, f"{server}/face.png"])
    counts = download.download_all(collection, FAST, sleep=lambda s: None)
    assert counts == {"skipped": 0, "bad_url": 4, "ok": 1}
    records = collection.downloads()
    assert all(records[u]["status"] == "bad_url" and records[u]["error"] for u in bad)
    # A rerun does not stop at them either: they are final, the rest is skipped.
    assert download.download_all(collection, FAST) == {"skipped": 5}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.from_regex(r"https?://[^/]{0,30}/.{0,60}", fullmatch=True))
def test_any_string_is_encoded_or_refused(url):
    try:
        encoded = download.encode_url(url)
    except download.Refused as e:
        assert e.status == "bad_url"
        return
    assert encoded.isascii() and encoded.split(":", 1)[0] in ("http", "https")
    assert " " not in encoded
