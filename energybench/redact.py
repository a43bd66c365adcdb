"""URLs without their credentials, wherever energybench prints or saves one.

Why: an intensity API behind a proxy, a Pushgateway or an MLflow server is often given with its credentials in
the URL (``https://user:token@host/...``, ``?api_key=...``), and those URLs reach error lines, CI logs and the
``source`` saved in every results file. ``redact`` replaces the user-info part and the value of every query
parameter whose name says it is a secret with ``***``; the rest of the URL stays, so the message still says
where energybench tried to go. A library's error text may quote the secret without its URL (a host name
``user:token@host`` it could not resolve), so the secrets of the URLs a caller names are masked anywhere.
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"

#: ``scheme://user:password@`` (the user-info part of any URL in the text).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^\s/?#@]+)@")
#: ``?token=...`` / ``&api_key=...`` / ``;sig=...``: a parameter whose name holds a secret's word.
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;][^\s=&#;]*?(?:token|key|secret|passw|pwd|auth|sig|credential|session)[^\s=&#;]*=)"
    r"(?P<value>[^\s&#;]+)", re.IGNORECASE)


def redact(text: str, *urls: str | None) -> str:
    """``text`` with every URL's credentials replaced by ``***``, and the credentials of ``urls`` (the URLs
    the caller used) masked wherever the text quotes them."""
    secrets = sorted({s for url in urls if url for s in secrets_of(url)}, key=len, reverse=True)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def secrets_of(url: str) -> list[str]:
    """The credentials in ``url``: its user-info (whole, and the password alone, quoted or not) and the
    values of its secret-named query parameters; short values (under 3 characters) are left out, since
    masking them everywhere would garble the message."""
    found: list[str] = []
    for m in _USERINFO.finditer(url):
        info = m["info"]  # user:password, or a token alone
        found += [info, info.partition(":")[2]]
    found += [m["value"] for m in _SECRET_PARAM.finditer(url)]
    found += [urllib.parse.unquote(s) for s in found]
    return [s for s in dict.fromkeys(found) if len(s) >= 3]
