r"""Collects candidate face photos from an image search: flags only, the work is in
glcic_jax.dataset.collect (browser, search) and glcic_jax.dataset.download (resumable downloads).

  python experiments/collect_faces.py --out=raw --per_query=300
  python experiments/collect_faces.py --out=raw --site=my_site.json --queries=俳優,女優

Needs Debian's chromium and chromium-driver (apt-get install -y chromium
chromium-driver). Re-running with the same --out resumes: queries that already
have --per_query candidates are not searched again and no URL is downloaded
twice. Then: python experiments/prepare_data.py --source=raw/images --out=...
"""

import json

from absl import app, flags, logging
from selenium.common.exceptions import WebDriverException

from glcic_jax.dataset import collect, download

_OUT = flags.DEFINE_string("out", None, "Output folder (images/ and state logs).", required=True)
_QUERIES = flags.DEFINE_list(
    "queries", ["日本人 顔", "日本人 女性", "俳優", "女優"], "Search queries (the study's)."
)
_PER_QUERY = flags.DEFINE_integer("per_query", 300, "Candidate image URLs wanted per query.")
_SITE = flags.DEFINE_string("site", "bing", "Preset site name or JSON file of SearchSite fields.")
_SEARCH = flags.DEFINE_bool("search", True, "Search for more candidates (off: only download).")
_TIMEOUT = flags.DEFINE_float("timeout", 20.0, "Seconds per download attempt.")
_RETRIES = flags.DEFINE_integer("retries", 2, "Extra attempts after a network error or 5xx.")
_MAX_BYTES = flags.DEFINE_integer("max_bytes", 15_000_000, "Largest image accepted, in bytes.")
_CHROMIUM = flags.DEFINE_string("chromium", collect.CHROMIUM, "Chromium binary.")
_CHROMEDRIVER = flags.DEFINE_string("chromedriver", collect.CHROMEDRIVER, "chromedriver binary.")
_CHROMIUM_ARG = flags.DEFINE_multi_string("chromium_arg", [], "Extra Chromium switch (repeatable).")


def main(argv):
    if len(argv) > 1:
        raise SystemExit(
            f"collect_faces: unexpected argument {' '.join(argv[1:])!r} (flags are --NAME=VALUE)"
        )
    try:
        # Every flag is checked before the output folder is created or a URL is tried:
        # limits under which every download fails would record the URLs as failed.
        if _PER_QUERY.value < 1:
            raise download.PolicyError(f"--per_query must be >= 1, not {_PER_QUERY.value}")
        policy = download.Policy(
            timeout_s=_TIMEOUT.value, retries=_RETRIES.value, max_bytes=_MAX_BYTES.value
        )
        download.check_policy(policy, download.POLICY_FLAGS)
        site = collect.load_site(_SITE.value) if _SEARCH.value else None
        store = download.Collection(_OUT.value)
    except (download.PolicyError, download.CollectionError, collect.CollectError) as e:
        raise SystemExit(f"collect_faces: {e}") from None
    todo = [q for q in _QUERIES.value if len(store.candidates(q)) < _PER_QUERY.value]
    if _SEARCH.value and todo:
        try:
            with collect.chromium(
                _CHROMIUM.value, _CHROMEDRIVER.value, tuple(_CHROMIUM_ARG.value)
            ) as driver:
                for query in todo:
                    try:
                        urls = collect.search(driver, site, query, _PER_QUERY.value)
                    except WebDriverException as e:  # A page that failed: go on.
                        logging.warning("%s: search failed: %s", query, e.msg)
                        continue
                    new = store.add_candidates(query, urls)
                    logging.info("%s: %d URLs on the page, %d new", query, len(urls), new)
        except collect.CollectError as e:
            raise SystemExit(f"collect_faces: {e}") from None
    from tqdm import tqdm

    counts = download.download_all(
        store, policy, progress=lambda it: tqdm(it, desc="download", disable=None)
    )
    print(json.dumps(counts, ensure_ascii=False))


if __name__ == "__main__":
    app.run(main)
