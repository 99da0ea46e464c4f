import base64

import pytest

from zerotrust import CryptoError, DependencyError
from zerotrust.crypto.ciphertext import (
    FieldCiphertext, associated_data, b64e, join_transit, looks_like, parse, split_transit,
)

NONCE = bytes(range(12))
WRAPPED = bytes(range(60))
CT = bytes(range(100, 130))


def test_envelope_serialises_byte_for_byte():
    c = FieldCiphertext("e", "customer-fields", 3, (NONCE, WRAPPED, CT))
    text = c.encode()
    assert text == ("ztf1.e.customer-fields.3." + base64.urlsafe_b64encode(NONCE).decode().rstrip("=") + "."
                    + base64.urlsafe_b64encode(WRAPPED).decode().rstrip("=") + "."
                    + base64.urlsafe_b64encode(CT).decode().rstrip("="))
    assert "=" not in text and looks_like(text)
    assert parse(text) == c


@pytest.mark.parametrize("c", [
    FieldCiphertext("t", "k", 1, (bytes(range(57)),)),
    FieldCiphertext("d", "k_2", 123456789, (bytes(range(16)),)),
])
def test_single_part_schemes_round_trip(c):
    assert parse(c.encode()) == c


GOOD = FieldCiphertext("e", "k", 1, (NONCE, WRAPPED, CT)).encode()


@pytest.mark.parametrize("text", [
    "ztf2" + GOOD[4:],  # unknown format version
    GOOD.replace("ztf1.e.", "ztf1.x."),  # unknown scheme
    GOOD.replace("ztf1.e.", "ztf1.t."),  # scheme with the wrong number of parts
    GOOD.replace(".k.1.", ".k.0."),  # versions start at 1
    GOOD.replace(".k.1.", ".k.01."),  # no leading zeros
    GOOD.replace(".k.1.", ".k.v1."),
    GOOD.replace(".k.1.", ".k.1234567890."),
    GOOD.replace(".k.1.", ".k/x.1."),  # key names are [A-Za-z0-9_-]
    GOOD.replace(".k.1.", "..1."),
    GOOD + ".",  # extra part
    GOOD.rsplit(".", 1)[0],  # missing part
    GOOD + "=",  # padding is not canonical
    GOOD + "A",  # 4n+1 characters cannot be base64
    GOOD[:-1] + "+",  # standard base64 alphabet
    "ztf1.e.k.1." + b64e(NONCE[:11]) + "." + b64e(WRAPPED) + "." + b64e(CT),  # nonce too short
    "ztf1.e.k.1." + b64e(NONCE) + ".." + b64e(CT),  # empty wrapped key
    "ztf1.e.k.1." + b64e(NONCE) + "." + b64e(WRAPPED) + "." + b64e(CT[:15]),  # shorter than a tag
    "ztf1.d.k.1." + b64e(bytes(15)),
    "ztf1.e.k.1." + "A" * 100_000,  # over the size cap
    "ztf1",
    "",
    "vault:v1:abcd",
])
def test_parse_is_strict(text):
    with pytest.raises(CryptoError):
        parse(text)


@pytest.mark.parametrize("value", [None, 1, 1.5, True, ["ztf1.t.k.1.AAAA"], {"a": 1}])
def test_parse_rejects_non_strings(value):
    assert not looks_like(value)
    with pytest.raises(CryptoError):
        parse(value)


def test_non_canonical_base64_is_tampering():
    # 'AB' and 'AA' both decode to b"\x00" in lenient decoders (the low 4 bits of 'B' are unused).
    good = "ztf1.d.k.1." + b64e(bytes(16) + b"\x00")
    assert good.endswith("AA")
    with pytest.raises(CryptoError, match="non-canonical"):
        parse(good[:-1] + "B")


def test_associated_data_is_exact_and_distinct():
    assert associated_data("e", "k", "tenant-a", '$["ssn"]') == b'["ztf1","e","k","tenant-a","$[\\"ssn\\"]"]'
    assert associated_data("d", "k", None, '$["ssn"]', 2) == b'["ztf1","d","k",null,"$[\\"ssn\\"]",2]'
    variants = {
        associated_data("e", "k", None, "$a"), associated_data("e", "k", "", "$a"),
        associated_data("t", "k", None, "$a"), associated_data("e", "k2", None, "$a"),
        associated_data("e", "k", None, "$b"), associated_data("d", "k", None, "$a", 1),
        associated_data("d", "k", None, "$a", 2), associated_data("e", "k", "null", "$a"),
    }
    assert len(variants) == 8


def test_transit_strings():
    raw = bytes(range(40))
    text = join_transit("vault", 7, raw)
    assert text == "vault:v7:" + base64.b64encode(raw).decode()
    assert split_transit(text, "vault") == (7, raw)
    for bad in ("local:v7:AAAA", "vault:7:AAAA", "vault:v0:AAAA", "vault:v1:@@@@", "", None):
        with pytest.raises(DependencyError):
            split_transit(bad, "vault")  # type: ignore[arg-type]
