"""Authorization server metadata: RFC 8414 first, then OpenID Connect Discovery 1.0.

The metadata is only used if its ``issuer`` is exactly the configured issuer
(RFC 8414 section 3.3); otherwise an attacker who controls one of the documents
could point us at their own keys. Redirects are not followed and bodies are capped.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import secure_url

MAX_DOCUMENT_BYTES = 512 * 1024


class FetchError(Exception):
    """A metadata or JWKS document could not be used; the message is safe to log."""


def trusted_url(url: Any) -> bool:
    """The config's own rule (parsed, not prefix-matched): https, or plain http only to a loopback host."""
    return type(url) is str and secure_url(url)


async def fetch_json(client: httpx.AsyncClient, url: str, timeout: float) -> Any:
    """GET ``url`` and parse JSON; any failure is a :class:`FetchError`."""
    try:
        async with client.stream("GET", url, timeout=timeout, headers={"accept": "application/json"}) as resp:
            if resp.status_code != 200:
                raise FetchError(f"GET {url}: HTTP {resp.status_code}")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise FetchError(f"GET {url}: {type(exc).__name__}") from None
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise FetchError(f"GET {url}: not JSON") from None


def metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 section 3.1 inserts the well-known segment before the issuer's path;
    OIDC Discovery section 4 appends it to the issuer."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{issuer.rstrip('/')}/.well-known/openid-configuration",
    ]


async def discover_jwks_uri(client: httpx.AsyncClient, issuer: str, timeout: float) -> str:
    """The ``jwks_uri`` from the first metadata document that names exactly ``issuer``."""
    problems: list[str] = []
    for url in metadata_urls(issuer):
        try:
            meta = await fetch_json(client, url, timeout)
        except FetchError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(meta, dict) or meta.get("issuer") != issuer:
            problems.append(f"{url}: issuer in metadata does not match the configured issuer")
            continue
        jwks_uri = meta.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not trusted_url(jwks_uri):
            problems.append(f"{url}: jwks_uri missing or not https")
            continue
        return jwks_uri
    raise FetchError("discovery failed: " + "; ".join(problems))
