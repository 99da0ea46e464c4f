"""The Transit ciphertext string ``<prefix>:v<n>:<base64>``: exactly one spelling per ciphertext."""

import pytest

from zerotrust.crypto.ciphertext import split_transit
from zerotrust.errors import CryptoError, DependencyError
from zerotrust.keys import ciphertext as ct

GOOD = "vault:v3:QUJD"  # b"ABC"


def test_canonical_ciphertext_round_trips():
    assert ct.parse(GOOD, "vault") == (3, b"ABC") and ct.split(GOOD, "vault") == (3, "QUJD")
    assert ct.join("vault", 3, b"ABC") == GOOD
    assert ct.parse("vault:v1:QQ==", "vault") == (1, b"A")


@pytest.mark.parametrize("text", [
    GOOD + "\n",  # "$" of ^...$ matches before a trailing newline, which then went to Vault
    "vault:v1:QR==",  # non-zero unused bits: b64decode(validate=True) reads it as "QQ=="
    "vault:v1:QUI=\n",
    "vault:v1:QUJ=",  # "QUI=" is b"AB"
    "vault:v1:QQ",  # padding missing
    "vault:v1:QQ=",
    "vault:v01:QUJD",
    "local:v1:QUJD",
    " vault:v1:QUJD",
])
def test_other_spellings_are_refused(text):
    with pytest.raises(CryptoError):
        ct.split(text, "vault")
    with pytest.raises(CryptoError):
        ct.parse(text, "vault")
    with pytest.raises(DependencyError):  # from a provider's answer: the provider is broken
        split_transit(text, "vault")
