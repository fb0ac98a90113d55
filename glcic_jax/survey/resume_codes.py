"""Resume codes: what a participant types to continue their survey in another browser.

A participant's browser is recognised by its signed session cookie. Another
browser may continue an existing id only with the code generated when the id
was registered and shown on every question page. The database keeps only a
salted scrypt hash of the code, and checks compare digests in constant time.

A code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L):
31**8 ~ 8.5e11 codes. A guesser gets a few wrong codes an hour per address
(see `admission`), far too few to find one participant's code.
"""

import functools
import hashlib
import hmac
import re
import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
CODE = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")
# scrypt's cost: 16 MiB and tens of ms per hash. Only registering and resuming
# in another browser pay it, never answering. The parameters are stored with
# each hash, so changing them here keeps old codes valid.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SALT_BYTES = 16
_DIGEST_BYTES = 32


def new_code() -> str:
    """A fresh random code, as stored (normalised)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(typed: str) -> str:
    """A code as typed (any case, full-width, spaces or dashes between groups) as stored."""
    return re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", typed)).upper()


def display(code: str) -> str:
    """A code as shown to a participant: two groups of four, e.g. ABCD-EF23."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def _digest(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(code.encode(), salt=salt, n=n, r=r, p=p, dklen=_DIGEST_BYTES)


def hash_code(code: str) -> str:
    """What the database stores for `code`: `scrypt-n-r-p$salt$digest`, salt and digest in hex."""
    salt = secrets.token_bytes(_SALT_BYTES)
    scheme = "scrypt-{n}-{r}-{p}".format(**_SCRYPT)
    return f"{scheme}${salt.hex()}${_digest(code, salt, **_SCRYPT).hex()}"


@functools.cache
def _no_code() -> str:
    """Checked when a participant has no stored code, so a refusal takes as long either way."""
    return hash_code(new_code())


def matches(code: str, stored: str | None) -> bool:
    """Whether `code` (normalised) is the one `stored` by `hash_code`; False if none is stored.

    Costs one scrypt in every case, and compares the digests in constant time.
    """
    scheme, salt, digest = (stored or _no_code()).split("$")
    name, *params = scheme.split("-")
    if name != "scrypt" or len(params) != 3:
        raise ValueError(f"unknown resume code scheme {scheme!r}")
    n, r, p = (int(v) for v in params)
    computed = _digest(code, bytes.fromhex(salt), n, r, p)
    return hmac.compare_digest(computed, bytes.fromhex(digest)) and stored is not None
