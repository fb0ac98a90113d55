"""Candidate image URLs -> image files, resumable, with a state log in the output folder.

An output folder holds `images/` and two append-only JSON-lines logs:
`candidates.jsonl` ({"query", "url"} per URL found by the search) and
`downloads.jsonl` (one record per finished attempt: url, query, status, file,
sha256, bytes, content_type, error). A new run reads both, skips every URL
that already has a final status, and so never downloads an image twice; an
interrupted download leaves no partial file (written to a temporary name,
then renamed).

Statuses: "ok"; "duplicate" (same bytes as an earlier URL, not stored again);
final failures "bad_url" (malformed, not http(s), or redirected to another
scheme), "http_error" (4xx), "bad_type" (Content-Type not an allowed image
type), "too_large" (over `max_bytes`), "not_image" (Pillow cannot read it);
and "failed" (network error, 5xx or a transfer over its deadline after all
retries), which the next run tries again.

Hostile servers: international URLs are encoded (IDNA host, percent-encoded
path and query) before the request; every redirect is checked for its scheme;
each read returns what one socket read gives, so a server that drips a byte
a second meets the transfer deadline on time.
"""

import dataclasses
import hashlib
import http.client
import io
import ipaddress
import json
import math
import os
import pathlib
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

from PIL import Image

FINAL = ("ok", "duplicate", "bad_url", "http_error", "bad_type", "too_large", "not_image")
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


@dataclasses.dataclass(frozen=True)
class Policy:
    """How to download.

    Attributes:
      timeout_s: socket timeout (connect, and each read) per attempt.
      deadline_s: limit for one whole transfer (a server dripping bytes).
      retries: extra attempts after a transient failure.
      backoff_s: wait before retry k is backoff_s * 2**k.
      max_bytes: larger responses are refused (Content-Length or while reading).
      content_types: accepted Content-Type values (parameters ignored).
      user_agent: sent with every request.
    """

    timeout_s: float = 20.0
    deadline_s: float = 120.0
    retries: int = 2
    backoff_s: float = 1.0
    max_bytes: int = 15_000_000
    content_types: tuple[str, ...] = (
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
    )
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) glcic-jax-collect/1.0"


class PolicyError(ValueError):
    """Download limits that cannot work; the message is one line naming the setting."""


# Policy field -> collect_faces.py's flag for it, for the one-line refusal.
POLICY_FLAGS = {"timeout_s": "--timeout", "retries": "--retries", "max_bytes": "--max_bytes"}


def check_policy(policy: Policy, names: dict[str, str] | None = None) -> None:
    """Raise PolicyError for limits under which every download would fail.

    Checked before any URL is tried, so that the user's own setting never
    gets a URL recorded as failed, let alone as failed for good (a
    `max_bytes` below 1 would make every image `too_large`). Times are finite
    and > 0, `backoff_s` finite and >= 0, `retries` >= 0, `max_bytes` >= 1,
    and at least one content type is accepted.

    Args:
      policy: the limits.
      names: field -> how the user named it (e.g. `POLICY_FLAGS`); default the field.
    """
    names = names or {}

    def refuse(field, rule):
        value = getattr(policy, field)
        raise PolicyError(f"{names.get(field, field)} must be {rule}, not {value!r}")

    for field in ("timeout_s", "deadline_s"):
        value = getattr(policy, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            refuse(field, "a number of seconds")
        if not (math.isfinite(value) and value > 0):
            refuse(field, "a finite number of seconds > 0")
    backoff = policy.backoff_s
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)):
        refuse("backoff_s", "a number of seconds")
    if not (math.isfinite(backoff) and backoff >= 0):
        refuse("backoff_s", "a finite number of seconds >= 0")
    for field, low in (("retries", 0), ("max_bytes", 1)):
        value = getattr(policy, field)
        if isinstance(value, bool) or not isinstance(value, int):
            refuse(field, "an integer")
        if value < low:
            refuse(field, f">= {low}")
    if not policy.content_types:
        refuse("content_types", "at least one accepted type")


_SCHEMES = ("http", "https")
# Characters a URL path or query may carry as they are; the rest is percent-encoded
# (an existing %XX escape is kept).
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_HOST = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


class Refused(Exception):
    """A final failure; `status` is one of `FINAL`."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def encode_url(url: str) -> str:
    """An http(s) URL as ASCII: IDNA host, percent-encoded path and query, no fragment.

    Raises:
      Refused("bad_url"): malformed (e.g. an unclosed IPv6 bracket), not
        http(s), no host, or a host IDNA cannot encode.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host, port = parts.hostname, parts.port  # both parse (and validate) the netloc
    except ValueError as e:
        raise Refused("bad_url", f"malformed URL: {e}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise Refused("bad_url", f"not an http(s) URL: {url[:200]}")
    if not host:
        raise Refused("bad_url", f"no host in {url[:200]}")
    try:
        if ":" in host:
            ascii_host = str(ipaddress.IPv6Address(host))
        else:
            ascii_host = host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError) as e:
        raise Refused("bad_url", f"host {host!r} cannot be encoded: {e}") from None
    if not _HOST.fullmatch(ascii_host) and ":" not in ascii_host:
        raise Refused("bad_url", f"not a host name: {host!r}")
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc += f":{port}"
    path = urllib.parse.quote(parts.path or "/", safe=_SAFE_PATH)
    query = urllib.parse.quote(parts.query, safe=_SAFE_QUERY)
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http(s), with the new location encoded like the first URL.

    A redirect to another scheme (file:, ftp:, data:) is `bad_url`. urllib
    itself refuses one to a scheme it does not follow with an HTTPError of the
    redirect's code, which would read as a server's `http_error`: the
    location is checked here first.
    """

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location.strip())
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            if scheme not in _SCHEMES:
                fp.close()
                raise Refused("bad_url", f"redirected to {target[:200]}: not an http(s) URL")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        newurl = urllib.parse.urljoin(req.full_url, newurl)
        return super().redirect_request(req, fp, code, msg, headers, encode_url(newurl))


_OPENER = urllib.request.build_opener(_CheckedRedirects)


def _read_capped(response, policy: Policy, deadline: float) -> bytes:
    """The body, refusing more than `max_bytes` or a transfer past `deadline` (monotonic)."""
    chunks, size = [], 0
    # read1: at most one read of the socket, which the socket timeout bounds,
    # so the deadline is checked at least every `timeout_s`.
    while chunk := response.read1(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > policy.max_bytes:
            raise Refused("too_large", f"over {policy.max_bytes} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError(f"transfer took over {policy.deadline_s} s")
    return b"".join(chunks)


def fetch(url: str, policy: Policy, sleep=time.sleep) -> tuple[bytes, str]:
    """Downloads one image with retries, a size cap and a content-type check.

    Args:
      url: http(s) URL.
      policy: limits.
      sleep: waits between retries.

    Returns:
      (body, content_type).

    Raises:
      PolicyError: limits under which no download can succeed (`check_policy`).
      Refused: a final failure (bad scheme, 4xx, wrong type, too large).
      OSError: the last transient error once retries are spent.
    """
    check_policy(policy)
    request = urllib.request.Request(
        encode_url(url), headers={"User-Agent": policy.user_agent, "Accept": "image/*"}
    )
    timeout = min(policy.timeout_s, policy.deadline_s)
    for attempt in range(policy.retries + 1):
        deadline = time.monotonic() + policy.deadline_s
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                ctype = response.headers.get_content_type().lower()
                if ctype not in policy.content_types:
                    raise Refused("bad_type", f"Content-Type {ctype}")
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > policy.max_bytes:
                    raise Refused("too_large", f"Content-Length {length}")
                return _read_capped(response, policy, deadline), ctype
        except urllib.error.HTTPError as e:
            if e.code not in (408, 425, 429) and e.code < 500:
                raise Refused("http_error", f"HTTP {e.code}") from None
            error = e
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as e:
            error = e
        if attempt < policy.retries:
            sleep(policy.backoff_s * 2**attempt)
    raise OSError(f"{type(error).__name__}: {error}")


def _read_jsonl(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # A line cut short by an interrupted run.
            continue
    return records


def _append_jsonl(path: pathlib.Path, records) -> None:
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


class CollectionError(Exception):
    """An output folder that cannot be used; the message is one line for the user."""


class Collection:
    """The output folder of a collection: candidate URLs, download log, images."""

    def __init__(self, out_dir):
        self.root = pathlib.Path(out_dir)
        self.images = self.root / "images"
        if self.root.exists() and not self.root.is_dir():
            raise CollectionError(f"--out {self.root} is a file, not a folder")
        try:
            self.images.mkdir(parents=True, exist_ok=True)
            probe = self.images / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise CollectionError(f"cannot write to --out {self.root}: {e.strerror or e}") from None
        self._candidates_path = self.root / "candidates.jsonl"
        self._downloads_path = self.root / "downloads.jsonl"

    def candidates(self, query: str | None = None) -> list[tuple[str, str]]:
        """(query, url) pairs found so far, first occurrence of each URL, in order."""
        seen, pairs = set(), []
        for r in _read_jsonl(self._candidates_path):
            if r["url"] not in seen and (query is None or r["query"] == query):
                seen.add(r["url"])
                pairs.append((r["query"], r["url"]))
        return pairs

    def add_candidates(self, query: str, urls) -> int:
        """Records new URLs for `query`; returns how many were new."""
        known = {url for _, url in self.candidates()}
        new = [{"query": query, "url": u} for u in dict.fromkeys(urls) if u not in known]
        _append_jsonl(self._candidates_path, new)
        return len(new)

    def downloads(self) -> dict[str, dict]:
        """Latest download record per URL."""
        return {r["url"]: r for r in _read_jsonl(self._downloads_path)}

    def record(self, entry: dict) -> None:
        _append_jsonl(self._downloads_path, [entry])


def _store(collection: Collection, url: str, body: bytes, by_hash: dict) -> dict:
    digest = hashlib.sha256(body).hexdigest()
    if digest in by_hash:
        return {"status": "duplicate", "file": by_hash[digest], "sha256": digest}
    try:
        with warnings.catch_warnings():
            # Pillow's complaints about metadata it then ignores: the image is checked here,
            # its EXIF is not, and a raw warning per URL would bury the progress bar.
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(io.BytesIO(body)) as im:
                im.verify()
                fmt = im.format
    except Exception as e:  # Pillow raises many types on bad data.  # noqa: BLE001
        raise Refused("not_image", f"{type(e).__name__}: {e}") from None
    name = f"{hashlib.sha1(url.encode()).hexdigest()[:16]}.{_EXTENSIONS.get(fmt, 'img')}"
    tmp = collection.images / f".{name}.part"
    tmp.write_bytes(body)
    os.replace(tmp, collection.images / name)
    by_hash[digest] = f"images/{name}"
    return {"status": "ok", "file": f"images/{name}", "sha256": digest}


def download_all(
    collection: Collection, policy: Policy = Policy(), sleep=time.sleep, progress=lambda it: it
) -> dict[str, int]:
    """Downloads every candidate without a final status; logs each outcome.

    Args:
      collection: the output folder.
      policy: limits.
      sleep: waits between retries.
      progress: wraps the candidate list (e.g. tqdm).

    Returns:
      Counts of this run's outcomes by status, plus "skipped" (already final).

    Raises:
      PolicyError: limits under which no download can succeed, before any
        URL is tried or recorded (`check_policy`).
    """
    check_policy(policy)
    done = collection.downloads()
    by_hash = {r["sha256"]: r["file"] for r in done.values() if r.get("status") == "ok"}
    counts = {"skipped": 0}
    for query, url in progress(collection.candidates()):
        if done.get(url, {}).get("status") in FINAL:
            counts["skipped"] += 1
            continue
        entry = {"url": url, "query": query, "file": "", "sha256": "", "error": ""}
        try:
            body, ctype = fetch(url, policy, sleep)
            entry.update(bytes=len(body), content_type=ctype)
            entry.update(_store(collection, url, body, by_hash))
        except Refused as e:
            entry.update(status=e.status, error=str(e))
        except PolicyError:  # the user's limits, never the URL's fault: nothing recorded
            raise
        except Exception as e:  # noqa: BLE001  one bad URL never ends a collection
            entry.update(status="failed", error=f"{type(e).__name__}: {e}"[:500])
        collection.record(entry)
        done[url] = entry
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return counts
