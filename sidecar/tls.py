"""Listener TLS: the server context, and the client certificate in the ASGI scope.

uvicorn does not fill the ASGI ``tls`` extension, so the protocol below does, once
per connection; the app turns it into :class:`zerotrust.TLSInfo` (RFC 8705 needs the
certificate thumbprint). With ``server.tls.vault_pki`` the context comes from
:mod:`zerotrust.keys.pki`, which reloads the certificate into the same object.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from typing import Any

from zerotrust import Config, ConfigError

log = logging.getLogger("zerotrust.sidecar.tls")

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


async def server_context(config: Config) -> ssl.SSLContext | None:
    tls = config.server.tls
    if tls is None:
        return None
    if tls.vault_pki is not None:
        from zerotrust.keys.pki import rotating_server_context

        ctx = rotating_server_context(config)
        return await ctx if inspect.isawaitable(ctx) else ctx
    if not tls.cert_file or not tls.key_file:
        raise ConfigError("server.tls: set cert_file and key_file, or vault_pki")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: no certificate, no handshake
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.tls: cannot load certificate or key: {exc}") from None
    return ctx


def tls_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection, or ``None`` on plain TCP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name = None
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        try:
            from cryptography import x509

            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except Exception:  # a name we cannot render is not a reason to drop the connection
            name = None
    return {"server_cert": None, "client_cert_chain": chain, "client_cert_name": name,
            # the handshake already verified it (CERT_REQUIRED / CERT_OPTIONAL fail the handshake otherwise)
            "client_cert_error": None, "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None}


def tls_protocol_class() -> type:
    """uvicorn's httptools protocol, plus the TLS extension in every request scope."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TLSHttpToolsProtocol(HttpToolsProtocol):
        _tls_ext: dict[str, Any] | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._tls_ext = tls_extension(transport)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._tls_ext is not None:
                self.scope["extensions"] = {"tls": self._tls_ext}  # type: ignore[typeddict-unknown-key]

    return TLSHttpToolsProtocol
