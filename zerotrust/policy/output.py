"""The policy decision document, version 1 (docs/policy.md, docs/policy-output.schema.json).

A decision comes from outside this process (OPA) or from policy code we did not
write, and parts of it end up in HTTP headers and logs, so every field is checked
strictly. Anything malformed raises :class:`MalformedDecision`; the engines turn
that into a fail-closed error, never into an allow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from ..types import PolicyResult

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}\Z")  # RFC 9110 field-name
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}\Z")  # RFC 6749 section 3.3 scope-token
_VISIBLE = re.compile(r"[\x20-\x7e]*\Z")
_REASON = re.compile(r"[\x21-\x7e]{1,200}\Z")
_MAX_HEADERS = 32
_MAX_SCOPES = 32
# Headers a policy may not set: framing and hop-by-hop fields would desynchronise the proxy.
_RESERVED = frozenset({"content-length", "transfer-encoding", "connection", "host", "upgrade", "te", "trailer",
                       "keep-alive", "proxy-connection"})


class MalformedDecision(ValueError):
    """The policy answered something that is not a decision document."""


def undefined_decision(engine: Any, where: str, input_hash: str) -> PolicyResult:
    """An undefined decision is a deny; counted, and logged sparingly (a wrong path would flood the log)."""
    engine.undefined += 1
    if engine.undefined == 1 or engine.undefined % 1000 == 0:
        logging.getLogger(f"zerotrust.policy.{engine.name}").warning(
            "%s decision %s is undefined (%d times): deny", engine.name, where, engine.undefined)
    return PolicyResult(False, "policy.undefined", engine=engine.name, revision=engine.revision,
                        input_hash=input_hash)


def parse_decision(value: Any, *, engine: str, revision: str = "", input_hash: str = "") -> PolicyResult:
    """A decision object (or a bare boolean, for ``allow``-style rules) -> :class:`PolicyResult`."""
    if value is True or value is False:
        return PolicyResult(value, "allow" if value else "deny", engine=engine, revision=revision,
                            input_hash=input_hash)
    if not isinstance(value, Mapping):
        raise MalformedDecision(f"decision is a {type(value).__name__}, not an object or a boolean")
    allow = value.get("allow")
    if allow is not True and allow is not False:
        raise MalformedDecision("decision.allow is missing or not a boolean")
    reason = value.get("reason", "allow" if allow else "deny")
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise MalformedDecision("decision.reason must be 1-200 visible ASCII characters")
    scopes = _scopes(value.get("required_scopes"))
    headers, step_up, status = _obligations(value.get("obligations"))
    return PolicyResult(allow, reason, required_scopes=scopes, status=status, headers=headers, step_up=step_up,
                        engine=engine, revision=revision, input_hash=input_hash)


def _scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > _MAX_SCOPES:
        raise MalformedDecision("decision.required_scopes must be a list of at most 32 scopes")
    for s in value:
        if not isinstance(s, str) or not _SCOPE.match(s):
            raise MalformedDecision("decision.required_scopes holds something that is not a scope token")
    return tuple(value)


def _obligations(value: Any) -> tuple[tuple[tuple[str, str], ...], dict[str, Any] | None, int | None]:
    if value is None:
        return (), None, None
    if not isinstance(value, Mapping):
        raise MalformedDecision("decision.obligations must be an object")
    return _headers(value.get("headers")), _step_up(value.get("step_up")), _status(value.get("status"))


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > _MAX_HEADERS:
        raise MalformedDecision("obligations.headers must be an object of at most 32 headers")
    out = []
    for name, v in value.items():
        if not isinstance(name, str) or not _TOKEN.match(name) or name.lower() in _RESERVED:
            raise MalformedDecision("obligations.headers has an invalid or reserved header name")
        if not isinstance(v, str) or len(v) > 4096 or not _VISIBLE.match(v):
            raise MalformedDecision("obligations.headers values must be visible ASCII (no CR, LF or NUL)")
        out.append((name, v))
    return tuple(out)


def _step_up(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedDecision("obligations.step_up must be an object")
    acr, max_age = value.get("acr_values"), value.get("max_age")
    if acr is not None and (not isinstance(acr, str) or not acr or len(acr) > 512 or not _VISIBLE.match(acr)):
        raise MalformedDecision("obligations.step_up.acr_values must be visible ASCII")
    if max_age is not None and (type(max_age) is not int or not 0 <= max_age <= 10 ** 9):
        raise MalformedDecision("obligations.step_up.max_age must be a non-negative integer")
    if acr is None and max_age is None:
        raise MalformedDecision("obligations.step_up needs acr_values or max_age")
    return {"acr_values": acr, "max_age": max_age}


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 400 <= value <= 599:
        raise MalformedDecision("obligations.status must be an integer from 400 to 599")
    return value
