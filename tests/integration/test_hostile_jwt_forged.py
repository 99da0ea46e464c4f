"""Forged JWTs that need code to build: key confusion, attacker keys, broken encodings and signatures, sizes.

Every forgery carries every scope the rules know, so if one were accepted the answer would
be a 200 and the test would say so. Controls (``ALLOW``) show the same builders produce
tokens the sidecar does accept, so a refusal below is the check working, not the harness.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.hostile import (
    DENY, ISS_B, MARK, HostileEnv, assert_denied, b64j, b64u, claims, forge, get, hostile, keyring, sign,
    token,
)

pytestmark = pytest.mark.integration
__all__ = ["hostile"]

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493
PUB = serialization.PublicFormat
ENC = serialization.Encoding
Builder = Callable[[HostileEnv], str]
CASES: dict[str, Builder] = {}
ALLOW: dict[str, Builder] = {}
INFO: dict[str, Builder] = {}  # attacker needs a valid token first: no 5xx, any answer, reported
KNOWN_BUGS: dict[str, str] = {}


def case(table: dict[str, Builder], name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        table[name] = fn
        return fn
    return register


def header(kid: str = "a-rsa", alg: str = "RS256", **extra: object) -> dict[str, object]:
    return {"alg": alg, "kid": kid, "typ": "at+jwt", **extra}


def parts(tok: str) -> list[str]:
    return tok.split(".")


def sig_bytes(tok: str) -> bytes:
    s = parts(tok)[2]
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def with_sig(tok: str, sig: bytes | str) -> str:
    h, p, _ = parts(tok)
    return f"{h}.{p}.{sig if isinstance(sig, str) else b64u(sig)}"


# --- algorithm confusion: the IdP's PUBLIC key as an HMAC secret --------------------------------

def _rsa_pem() -> bytes:
    return keyring().a_rsa.public_key().public_bytes(ENC.PEM, PUB.SubjectPublicKeyInfo)


# name -> (kid, the secret an attacker can derive from the published key); built lazily, keys are slow
_SECRETS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "rsa-pem-spki": ("a-rsa", _rsa_pem),
    "rsa-pem-no-newline": ("a-rsa", lambda: _rsa_pem().strip()),
    "rsa-pem-pkcs1": ("a-rsa", lambda: keyring().a_rsa.public_key().public_bytes(ENC.PEM, PUB.PKCS1)),
    "rsa-der": ("a-rsa", lambda: keyring().a_rsa.public_key().public_bytes(ENC.DER, PUB.SubjectPublicKeyInfo)),
    "rsa-jwk-json": ("a-rsa", lambda: json.dumps(keyring().jwk("a_rsa")).encode()),
    "rsa-jwk-json-compact": ("a-rsa", lambda: json.dumps(keyring().jwk("a_rsa"), separators=(",", ":")).encode()),
    "rsa-n-bytes": ("a-rsa", lambda: keyring().a_rsa.public_key().public_numbers().n.to_bytes(256, "big")),
    "rsa-n-b64url": ("a-rsa", lambda: keyring().jwk("a_rsa")["n"].encode()),
    "ec-pem": ("a-ec", lambda: keyring().a_ec.public_key().public_bytes(ENC.PEM, PUB.SubjectPublicKeyInfo)),
    "ec-uncompressed-point": ("a-ec", lambda: keyring().a_ec.public_key().public_bytes(
        ENC.X962, PUB.UncompressedPoint)),
    "ed-raw": ("a-ed", lambda: keyring().a_ed.public_key().public_bytes(ENC.Raw, PUB.Raw)),
    "ed-pem": ("a-ed", lambda: keyring().a_ed.public_key().public_bytes(ENC.PEM, PUB.SubjectPublicKeyInfo)),
}


def _hs(alg: str, kid: str, secret: Callable[[], bytes]) -> Builder:
    def build(env: HostileEnv) -> str:
        h, p = b64j(header(kid, alg)), b64j(claims())
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return f"{h}.{p}.{b64u(hmac.new(secret(), f'{h}.{p}'.encode(), digest).digest())}"
    return build


for _name, (_kid, _secret) in _SECRETS.items():
    for _alg in ("HS256", "HS384", "HS512") if _name.startswith("rsa") else ("HS256",):
        CASES[f"{_alg}-secret-{_name}"] = _hs(_alg, _kid, _secret)


# --- an attacker's key under the victim's kid, and keys of the other issuer ----------------------

def _signed(key_name: str, hdr: dict[str, object], iss: str | None = None) -> Builder:
    return lambda env: forge(hdr, claims(iss) if iss else claims(), getattr(keyring(), key_name),
                             str(hdr["alg"]))


for _key, _kid, _alg in [("evil_rsa", "a-rsa", "RS256"), ("evil_rsa", "shared", "RS256"),
                         ("evil_ec", "a-ec", "ES256"), ("evil_ed", "a-ed", "EdDSA"),
                         ("evil_rsa", "evil-rsa", "RS256"), ("evil_rsa", MARK, "RS256")]:
    CASES[f"attacker-{_key}-as-kid-{_kid[:8]}"] = _signed(_key, header(_kid, _alg))
CASES["attacker-rsa-no-kid"] = _signed("evil_rsa", {"alg": "RS256", "typ": "at+jwt"})
CASES["attacker-ed-no-kid"] = _signed("evil_ed", {"alg": "EdDSA", "typ": "at+jwt"})
CASES["iss-a-signed-by-b-key-b-kid"] = _signed("b_rsa", header("b-rsa"))
CASES["iss-a-signed-by-b-key-shared-kid"] = _signed("b_shared", header("shared"))
CASES["iss-b-signed-by-a-key-shared-kid"] = _signed("a_shared", header("shared"), ISS_B)
CASES["iss-b-signed-by-a-key-a-kid"] = _signed("a_rsa", header("a-rsa"), ISS_B)
CASES["iss-b-no-kid-signed-by-a-key"] = _signed("a_rsa", {"alg": "RS256", "typ": "JWT"}, ISS_B)
ALLOW["control-iss-a-shared-kid"] = _signed("a_shared", header("shared"))
ALLOW["control-iss-b-shared-kid"] = _signed("b_shared", header("shared"), ISS_B)


# --- keys the token brings along (jwk, jku, x5u, x5c) -------------------------------------------

def _cert_chain() -> list[str]:
    key = keyring().evil_rsa
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer-a.hostile.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return [base64.b64encode(cert.public_bytes(ENC.DER)).decode()]


def _embedded(**extra: object) -> Builder:
    def build(env: HostileEnv) -> str:
        values = {k: (v(env) if callable(v) else v) for k, v in extra.items()}
        kid = values.pop("kid", None)
        hdr = {"alg": "RS256", "typ": "at+jwt", **({"kid": kid} if kid else {}), **values}
        return forge(hdr, claims(), keyring().evil_rsa)
    return build


_EVIL_JWK = lambda env: keyring().jwk("evil_rsa")  # noqa: E731
_EVIL_URL = lambda env: f"{env.idp.url}/evil/jwks?{MARK}"  # noqa: E731
CASES["jwk-embedded-attacker-key"] = _embedded(jwk=_EVIL_JWK)
CASES["jwk-embedded-attacker-key-victim-kid"] = _embedded(jwk=_EVIL_JWK, kid="a-rsa")
CASES["jwk-embedded-victim-public-key"] = _embedded(jwk=lambda env: keyring().jwk("a_rsa"), kid="a-rsa")
CASES["jku-attacker-url-attacker-kid"] = _embedded(jku=_EVIL_URL, kid="evil-rsa")
CASES["jku-attacker-url-victim-kid"] = _embedded(jku=_EVIL_URL, kid="a-rsa")
CASES["x5u-attacker-url"] = _embedded(x5u=_EVIL_URL)
CASES["x5c-attacker-cert-no-kid"] = _embedded(x5c=lambda env: _cert_chain())
CASES["x5c-attacker-cert-victim-kid"] = _embedded(x5c=lambda env: _cert_chain(), kid="a-rsa")
CASES["x5c-and-jwk-and-jku"] = _embedded(x5c=lambda env: _cert_chain(), jwk=_EVIL_JWK, jku=_EVIL_URL)


# --- shapes: JWE, JSON serialization, nesting, compression, size, segments -----------------------

CASES["jwe-5-parts"] = lambda env: ".".join([b64j({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "a-rsa"}),
                                             b64u(secrets.token_bytes(256)), b64u(MARK.encode()), "AAAA", "AAAA"])
CASES["jwe-5-parts-from-valid-token"] = lambda env: token() + ".."
CASES["4-parts"] = lambda env: token() + "." + b64u(MARK.encode())
CASES["2-parts"] = lambda env: token().rsplit(".", 1)[0]
CASES["6-parts"] = lambda env: token() + "..." + b64u(MARK.encode())
CASES["json-serialization-flattened"] = lambda env: json.dumps(
    dict(zip(("protected", "payload", "signature"), parts(token()))), separators=(",", ":"))
CASES["json-serialization-general"] = lambda env: (lambda t: json.dumps(
    {"payload": t[1], "signatures": [{"protected": t[0], "signature": t[2]}]}, separators=(",", ":")))(
    parts(token()))
CASES["json-serialization-base64url"] = lambda env: b64u(json.dumps(
    dict(zip(("protected", "payload", "signature"), parts(token())))).encode())
CASES["nested-valid-token-as-payload"] = lambda env: forge(header(cty="JWT"), token().encode(), keyring().a_rsa)
CASES["nested-no-cty"] = lambda env: forge(header(), token().encode(), keyring().a_rsa)
CASES["deflated-payload-zip-DEF"] = lambda env: forge(
    header(zip="DEF"), zlib.compress(json.dumps(claims()).encode())[2:-4], keyring().a_rsa)
CASES["huge-1mb-junk"] = lambda env: "a" * 1_000_000
CASES["huge-1mb-validly-signed"] = lambda env: token(payload=claims(pad="x" * 1_000_000))
CASES["just-over-max-token-bytes"] = lambda env: _sized(8192, over=True)
ALLOW["control-just-under-max-token-bytes"] = lambda env: _sized(8192, over=False)
CASES["10k-segments"] = lambda env: "a." * 10_000 + "a"
CASES["valid-token-plus-10k-segments"] = lambda env: token() + ".x" * 10_000
CASES["10k-dots"] = lambda env: "." * 10_000


def _sized(limit: int, over: bool) -> str:
    """A valid token padded to the first size above ``limit``, or the last one at or below it."""
    def make(pad: int) -> str:
        return token(payload=claims(pad="x" * pad, jti="0" * 16))
    pad = (limit - len(make(0))) * 3 // 4 - 4
    while len(make(pad + 1)) <= limit:
        pad += 1
    tok = make(pad + 1) if over else make(pad)
    assert (len(tok) > limit) if over else (limit - 2 <= len(tok) <= limit), len(tok)
    return tok


# --- encodings: base64url variants, unicode and NUL anywhere -------------------------------------

def _resigned(transform: Callable[[str], str], which: int) -> Builder:
    """Re-encode the header (0) or payload (1) segment and sign the new bytes with the real key."""
    def build(env: HostileEnv) -> str:
        segs = [b64j(header(x="~~~>>>???")), b64j(claims(sub="alice~~~>>>???"))]  # '-' and '_' in both
        changed = transform(segs[which])
        assert changed != segs[which]
        segs[which] = changed
        signing_input = f"{segs[0]}.{segs[1]}"
        return f"{signing_input}.{b64u(sign('RS256', keyring().a_rsa, signing_input.encode()))}"
    return build


def _pad(seg: str) -> str:
    return seg + "=" * (-len(seg) % 4 or 4)


def _noncanonical(seg: str) -> str:
    """Same bytes, different text: set unused low bits of the last character (when there are any)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 4, 3: 2}[len(seg) % 4]  # bits of the last char that encode nothing
    last = alphabet.index(seg[-1])
    return seg[:-1] + alphabet[last | ((1 << spare) - 1)]


def _std_alphabet(seg: str) -> str:
    return seg.replace("-", "+").replace("_", "/")


for _i, _part in enumerate(("header", "payload")):
    CASES[f"{_part}-padded-resigned"] = _resigned(_pad, _i)
    CASES[f"{_part}-standard-alphabet-resigned"] = _resigned(_std_alphabet, _i)
    CASES[f"{_part}-space-inside-resigned"] = _resigned(lambda s: s[:10] + " " + s[10:], _i)
CASES["payload-length-mod-4-is-1"] = _resigned(lambda s: s + "A" * ((1 - len(s)) % 4), 1)


@case(CASES, "payload-noncanonical-trailing-bits-resigned")
def _noncanonical_payload(env: HostileEnv) -> str:
    seg = next(s for s in (b64j(claims(pad="x" * n)) for n in range(3)) if len(s) % 4)
    signing_input = f"{b64j(header())}.{_noncanonical(seg)}"
    return f"{signing_input}.{b64u(sign('RS256', keyring().a_rsa, signing_input.encode()))}"


def _sig_text(transform: Callable[[str], str]) -> Builder:
    """A valid token whose signature TEXT is re-encoded (same bytes to a lenient decoder)."""
    def build(env: HostileEnv) -> str:
        for _ in range(20):  # the signature must contain a character the transform changes
            tok = token()
            if (new := transform(parts(tok)[2])) != parts(tok)[2]:
                return with_sig(tok, new)
        raise AssertionError("no signature the transform changes")
    return build


CASES["signature-padded"] = _sig_text(_pad)
CASES["signature-standard-alphabet"] = _sig_text(_std_alphabet)
CASES["signature-noncanonical-trailing-bits"] = _sig_text(_noncanonical)
CASES["signature-with-inner-space"] = lambda env: (lambda t: t[:-20] + " " + t[-20:])(token())
CASES["percent-encoded-dots"] = lambda env: token().replace(".", "%2E")
CASES["double-quoted-token"] = lambda env: f'"{token()}"'
CASES["empty-header-segment"] = lambda env: "." + ".".join(parts(token())[1:])
CASES["empty-payload-segment"] = lambda env: (lambda t: f"{t[0]}..{t[2]}")(parts(token()))
CASES["empty-signature-rs256"] = lambda env: with_sig(token(), "")
CASES["only-dots"] = lambda env: ".."

_CHARS = {"nul": "\u0000", "latin": "\u00e9", "rtl": "\u202e", "bom": "\ufeff", "nbsp": "\u00a0", "zwsp": "\u200b"}
_WHERE = {"start": lambda t, c: c + t, "end": lambda t, c: t + c, "after-dot": lambda t, c: t.replace(".", "." + c, 1),
          "mid-header": lambda t, c: t[:8] + c + t[8:], "mid-signature": lambda t, c: t[:-30] + c + t[-30:]}
for _c, _ch in _CHARS.items():
    for _w, _fn in _WHERE.items():
        CASES[f"{_c}-at-{_w}"] = (lambda fn, ch: lambda env: fn(token(), ch))(_fn, _ch)


# --- signatures: psychic, zero, all-ones, truncated, extended, DER, swapped ----------------------

def _resig(fn: Callable[[bytes], bytes], name: str = "a_rsa") -> Builder:
    """A valid token of ``name`` whose signature bytes are replaced by ``fn(signature)``."""
    def build(env: HostileEnv) -> str:
        tok = token(name)
        return with_sig(tok, fn(sig_bytes(tok)))
    return build


def _ec(r: int, s: int) -> Builder:
    return _resig(lambda sig: r.to_bytes(32, "big") + s.to_bytes(32, "big"), "a_ec")


def _rsa_n() -> int:
    return keyring().a_rsa.public_key().public_numbers().n


CASES["es256-psychic-r0-s0"] = _ec(0, 0)
CASES["es256-r-s-equal-n"] = _ec(P256_N, P256_N)
CASES["es256-r0-s1"] = _ec(0, 1)
CASES["es256-short-zero-signature"] = _resig(lambda sig: b"\x00\x00", "a_ec")
CASES["rs256-signature-all-zero"] = _resig(lambda sig: b"\x00" * 256)
CASES["rs256-signature-all-ff"] = _resig(lambda sig: b"\xff" * 256)
CASES["rs256-signature-one"] = _resig(lambda sig: (1).to_bytes(256, "big"))
CASES["rs256-signature-equals-modulus"] = _resig(lambda sig: _rsa_n().to_bytes(256, "big"))
CASES["rs256-signature-plus-modulus"] = _resig(lambda sig: (int.from_bytes(sig, "big") + _rsa_n()).to_bytes(257, "big"))
CASES["rs256-signature-truncated-1-byte"] = _resig(lambda sig: sig[:-1])
CASES["rs256-signature-truncated-half"] = _resig(lambda sig: sig[:128])
CASES["rs256-signature-leading-zero-byte"] = _resig(lambda sig: b"\x00" + sig)
CASES["rs256-signature-trailing-byte"] = _resig(lambda sig: sig + b"\x00")
CASES["ed25519-signature-zero"] = _resig(lambda sig: b"\x00" * 64, "a_ed")
CASES["ed25519-s-plus-l-malleated"] = _resig(  # RFC 8032 5.1.7: S must be < L
    lambda sig: sig[:32] + (int.from_bytes(sig[32:], "little") + ED25519_L).to_bytes(32, "little"), "a_ed")
# JWS needs no low-S rule, so this re-encoding of a VALID token is not a forgery: reported, not refused.
INFO["es256-high-s-malleated"] = _resig(
    lambda sig: sig[:32] + (P256_N - int.from_bytes(sig[32:], "big")).to_bytes(32, "big"), "a_ec")


@case(CASES, "es256-der-signature")
def _der(env: HostileEnv) -> str:
    tok = token("a_ec")
    return with_sig(tok, keyring().a_ec.sign(tok.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256())))


def _splice(h: str, p: str, s: str) -> str:
    return ".".join([parts(h)[0], parts(p)[1], parts(s)[2]])


CASES["tampered-payload-keeps-signature"] = lambda env: (lambda t: _splice(t, f".{b64j(claims(sub=MARK))}.", t))(
    token())
CASES["header-swapped-with-ec-token-header"] = lambda env: (lambda t: _splice(token("a_ec"), t, t))(token())
CASES["header-swapped-with-issuer-b-header"] = lambda env: (lambda t: _splice(token("b_rsa"), t, t))(token())
CASES["header-reordered-same-members"] = lambda env: (lambda t: _splice(
    f"{b64j(dict(reversed(list(header().items()))))}..", t, t))(token())
CASES["payload-swapped-between-issuers"] = lambda env: (lambda b: _splice(b, token(), b))(token("b_rsa"))
CASES["signature-grafted-from-other-token"] = lambda env: _splice(token(), token(), token())
for _name in ("a_rsa", "a_ec", "a_ed", "b_rsa"):
    ALLOW[f"control-{_name}"] = (lambda n: lambda env: token(n))(_name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[n])]
                                                if n in KNOWN_BUGS else []) for n in CASES])
def test_forged_token_is_refused(hostile: HostileEnv, name: str) -> None:
    tok = CASES[name](hostile)
    for path in ("/data", "/public/x"):
        resp = get(hostile.port, path, {"Authorization": f"Bearer {tok}"})
        assert_denied(resp, secret=tok[-16:] if len(tok) < 100_000 else "", allowed=DENY)


@pytest.mark.parametrize("name", list(ALLOW))
def test_control_token_is_accepted(hostile: HostileEnv, name: str) -> None:
    resp = get(hostile.port, "/data", {"Authorization": f"Bearer {ALLOW[name](hostile)}"})
    assert resp.status == 200 and resp.header("x-auth-subject") == "alice", resp.raw[:400]


@pytest.mark.parametrize("name", list(INFO))
def test_malleated_valid_token_never_errors(hostile: HostileEnv, name: str) -> None:
    resp = get(hostile.port, "/data", {"Authorization": f"Bearer {INFO[name](hostile)}"})
    assert resp.status in DENY | {200}, resp.raw[:400]


def test_still_serving_after_forgery_barrage(hostile: HostileEnv) -> None:
    hostile.still_serving()
