"""FieldEncryptor against an in-memory Transit: binding, tampering, determinism, batching, rewrap."""

import copy
import json

import pytest

from tests.unit.test_fields_support import FakeTransit
from zerotrust import CryptoError, DependencyError
from zerotrust.crypto import FieldEncryptor, FieldInputError, FieldSpec
from zerotrust.crypto.ciphertext import MAX_CIPHERTEXT_CHARS, parse
from zerotrust.crypto.jsonpath import parse as parse_path
from zerotrust.crypto.values import MAX_FIELDS, MAX_VALUE_BYTES

PATHS = ["$.ssn", "$.cards[*].pan", "$.profile", "$.n", "$.f", "$.flag", "$.nothing", "$.missing.deeper"]
DOC = {"ssn": "123-45-6789", "cards": [{"pan": "4111"}, {"pan": 5500}], "profile": {"b": [1, 2.5], "a": None},
       "n": 42, "f": 1.25, "flag": False, "nothing": None, "name": "Ada", "unicode": "é"}
MODES = ["envelope", "transit"]


def make(mode="envelope", **kw):
    fake = FakeTransit()
    return fake, FieldEncryptor(fake, "k", mode=mode, **kw)


@pytest.mark.parametrize("mode", MODES)
def test_round_trip_keeps_json_types(mode):
    _, enc = make(mode, context="tenant-a")
    original = copy.deepcopy(DOC)
    out = enc.encrypt_document(DOC, PATHS)
    assert DOC == original  # input untouched
    assert out["name"] == "Ada" and out["unicode"] == "é"
    for field in ("ssn", "profile", "n", "f", "flag", "nothing"):
        assert isinstance(out[field], str) and out[field].startswith(f"ztf1.{mode[0]}.k.1.")
    assert enc.decrypt_document(out, PATHS) == DOC


@pytest.mark.parametrize("mode", MODES)
async def test_async_twins(mode):
    _, enc = make(mode)
    out = await enc.aencrypt_document(DOC, PATHS)
    assert await enc.adecrypt_document(out, PATHS) == DOC
    assert enc.decrypt_document(await enc.arewrap_document(out, PATHS), PATHS) == DOC


@pytest.mark.parametrize("mode", MODES)
def test_random_mode_never_repeats(mode):
    _, enc = make(mode)
    a = enc.encrypt_document({"ssn": "same"}, ["$.ssn"])["ssn"]
    b = enc.encrypt_document({"ssn": "same"}, ["$.ssn"])["ssn"]
    assert a != b


def test_deterministic_equal_values_equal_ciphertexts_bound_to_path_and_context():
    _, enc = make(context="t1")
    spec = [FieldSpec(parse_path("$.email"), True), FieldSpec(parse_path("$.alt"), True)]
    a = enc.encrypt_document({"email": "a@x", "alt": "a@x"}, spec)
    b = enc.encrypt_document({"email": "a@x", "alt": "b@x"}, spec)
    assert a["email"] == b["email"]  # equality search works
    assert a["email"] != a["alt"]  # same value, other field: unlinkable
    assert a["alt"] != b["alt"]
    assert enc.encrypt_value("a@x", "$.email", deterministic=True) == a["email"]
    assert enc.encrypt_value("a@x", "$.email", deterministic=True, context="t2") != a["email"]
    assert a["email"].startswith("ztf1.d.k.1.")
    assert enc.decrypt_document(a, spec) == {"email": "a@x", "alt": "a@x"}


def test_deterministic_array_elements_share_a_binding():
    _, enc = make()
    spec = [FieldSpec(parse_path("$.u[*].e"), True)]
    out = enc.encrypt_document({"u": [{"e": "x"}, {"e": "x"}, {"e": "y"}]}, spec)
    assert out["u"][0]["e"] == out["u"][1]["e"] != out["u"][2]["e"]
    assert enc.encrypt_value("x", "$.u[*].e", deterministic=True) == out["u"][0]["e"]


@pytest.mark.parametrize("scheme", ["envelope", "transit", "deterministic"])
def test_moved_field_fails(scheme):
    _, enc = make("transit" if scheme == "transit" else "envelope")
    det = scheme == "deterministic"
    spec = [FieldSpec(parse_path("$.ssn"), det), FieldSpec(parse_path("$.name"), det)]
    out = enc.encrypt_document({"ssn": "secret", "name": "Ada"}, spec)
    swapped = {"ssn": out["name"], "name": out["ssn"]}
    with pytest.raises(CryptoError):
        enc.decrypt_document(swapped, spec)
    # Same field name elsewhere in the tree is another field too.
    with pytest.raises(CryptoError):
        enc.decrypt_document({"x": {"ssn": out["ssn"]}}, ["$.x.ssn"])


@pytest.mark.parametrize("mode", MODES)
def test_other_context_fails(mode):
    _, enc = make(mode, context="tenant-a")
    out = enc.encrypt_document({"ssn": "s"}, ["$.ssn"])
    with pytest.raises(CryptoError):
        enc.decrypt_document(out, ["$.ssn"], context="tenant-b")


def _tampered(text: str):
    """Every variant of ``text`` with one character changed (one per position)."""
    for i, ch in enumerate(text):
        for repl in ("A", "B", "-", "_", "z"):
            if repl != ch:
                yield text[:i] + repl + text[i + 1:]
                break


@pytest.mark.parametrize("scheme", ["envelope", "transit", "deterministic"])
def test_tampering_anywhere_is_a_crypto_error(scheme):
    fake, enc = make("transit" if scheme == "transit" else "envelope")
    spec = [FieldSpec(parse_path("$.v"), scheme == "deterministic")]
    good = enc.encrypt_document({"v": {"card": "4111 1111 1111 1111"}}, spec)["v"]
    checked = 0
    for bad in _tampered(good):
        with pytest.raises(CryptoError):
            enc.decrypt_document({"v": bad}, spec)
        checked += 1
    assert checked == len(good)


def test_truncation_and_extension_fail():
    _, enc = make()
    good = enc.encrypt_document({"v": "x"}, ["$.v"])["v"]
    for bad in (good[:-4], good + "AAAA", good.replace(".k.1.", ".k.2.")):
        with pytest.raises(CryptoError):
            enc.decrypt_document({"v": bad}, ["$.v"])


def test_ciphertext_for_another_key_is_refused_without_a_call():
    fake, enc = make()
    other = FieldEncryptor(fake, "other")
    text = other.encrypt_document({"v": 1}, ["$.v"])["v"]
    fake.calls.clear()
    with pytest.raises(CryptoError, match="not the configured"):
        enc.decrypt_document({"v": text}, ["$.v"])
    assert fake.calls == []


def test_strict_decrypt_refuses_plaintext_lenient_keeps_it():
    _, enc = make()
    with pytest.raises(CryptoError, match="not a ztf1 ciphertext"):
        enc.decrypt_document({"v": "plain"}, ["$.v"])
    assert enc.decrypt_document({"v": "plain", "w": None}, ["$.v", "$.w"], strict=False) == {"v": "plain", "w": None}


def test_transit_mode_is_one_batch_call_per_document():
    fake, enc = make("transit")
    doc = {"rows": [{"a": i, "b": str(i)} for i in range(50)]}
    out = enc.encrypt_document(doc, ["$.rows[*].a", "$.rows[*].b"])
    assert fake.calls == ["encrypt"]
    fake.calls.clear()
    assert enc.decrypt_document(out, ["$.rows[*].a", "$.rows[*].b"]) == doc
    assert fake.calls == ["decrypt"]


def test_envelope_mode_uses_one_cached_data_key():
    fake, enc = make("envelope")
    doc = {"rows": [{"a": i} for i in range(50)]}
    out1 = enc.encrypt_document(doc, ["$.rows[*].a"])
    out2 = enc.encrypt_document(doc, ["$.rows[*].a"])
    assert fake.calls == ["generate_data_key"]
    fake.calls.clear()
    enc.clear_cache()
    assert enc.decrypt_document(out1, ["$.rows[*].a"]) == doc
    assert enc.decrypt_document(out2, ["$.rows[*].a"]) == doc
    assert fake.calls == ["unwrap_data_key"]  # same wrapped key: unwrapped once, then cached


def test_many_data_keys_unwrap_in_one_batch():
    fake, enc = make("envelope", datakey_max_uses=1)
    out = enc.encrypt_document({"r": list(range(5))}, ["$.r[*]"])
    assert fake.calls == ["generate_data_key"] * 5
    fake.calls.clear()
    enc.clear_cache()
    assert enc.decrypt_document(out, ["$.r[*]"]) == {"r": list(range(5))}
    assert fake.calls == ["decrypt"]


@pytest.mark.parametrize("mode", MODES)
def test_rotation_old_decrypts_rewrap_upgrades_without_plaintext(mode):
    fake, enc = make(mode, context="t")
    spec = [FieldSpec(parse_path("$.ssn")), FieldSpec(parse_path("$.email"), True)]
    doc = {"ssn": "123", "email": "a@x"}
    old = enc.encrypt_document(doc, spec)
    fake.rotate()
    enc.clear_cache()
    assert enc.decrypt_document(old, spec) == doc
    fake.calls.clear()
    new = enc.rewrap_document(old, spec)
    assert [parse(new[f]).version for f in ("ssn", "email")] == [2, 2]
    # e/t: the key store re-wraps; this process never asks for a plaintext or a data key.
    assert "decrypt" not in fake.calls and "unwrap_data_key" not in fake.calls
    if mode == "envelope":
        o, n = parse(old["ssn"]), parse(new["ssn"])
        assert (o.parts[0], o.parts[2]) == (n.parts[0], n.parts[2])  # nonce and payload kept
    assert enc.decrypt_document(new, spec) == doc
    assert enc.rewrap_document(new, spec) == new  # already current: unchanged
    assert enc.encrypt_value("a@x", "$.email", deterministic=True) == new["email"]


def test_key_store_down_raises_and_returns_nothing():
    fake, enc = make("envelope")
    fake.down = True
    with pytest.raises(DependencyError):
        enc.encrypt_document({"ssn": "1"}, ["$.ssn"])
    fake.down = False
    out = enc.encrypt_document({"ssn": "1"}, ["$.ssn"])
    enc.clear_cache()
    fake.down = True
    with pytest.raises(DependencyError):
        enc.decrypt_document(out, ["$.ssn"])


def test_provider_bug_fails_closed():
    class Broken(FakeTransit):
        def encrypt(self, key, plaintexts, context=None):
            raise RuntimeError("boom")

        def generate_data_key(self, key, context=None):
            return "garbage"

    for mode in MODES:
        with pytest.raises(DependencyError):
            FieldEncryptor(Broken(), "k", mode=mode).encrypt_document({"a": 1}, ["$.a"])


def test_input_limits_and_ambiguity():
    _, enc = make()
    with pytest.raises(FieldInputError, match="more than"):
        enc.encrypt_document({"v": "x" * MAX_VALUE_BYTES}, ["$.v"])
    with pytest.raises(FieldInputError, match="not plain JSON"):
        enc.encrypt_document({"v": float("nan")}, ["$.v"])
    with pytest.raises(FieldInputError, match="unpaired surrogate"):
        enc.encrypt_document(json.loads('{"v": "\\ud800"}'), ["$.v"])
    with pytest.raises(FieldInputError, match=f"more than {MAX_FIELDS}"):
        enc.encrypt_document({"r": [0] * (MAX_FIELDS + 1)}, ["$.r[*]"])
    with pytest.raises(FieldInputError, match="overlap"):
        enc.encrypt_document({"a": {"b": 1}}, ["$.a", "$.a.b"])
    with pytest.raises(FieldInputError, match="deterministic"):
        enc.encrypt_document({"a": 1}, [FieldSpec(parse_path("$.a")), FieldSpec(parse_path("$['a']"), True)])
    with pytest.raises(FieldInputError, match="no field paths"):
        enc.encrypt_document({"a": 1})
    with pytest.raises(FieldInputError, match="must start"):
        enc.encrypt_document({"a": 1}, ["a"])
    with pytest.raises(CryptoError):
        enc.decrypt_document({"v": "ztf1.e.k.1." + "A" * MAX_CIPHERTEXT_CHARS}, ["$.v"])
    # The same field selected twice with the same flag is encrypted once.
    out = enc.encrypt_document({"a": 1}, ["$.a", "$['a']", "$.*"])
    assert enc.decrypt_document(out, ["$.a"]) == {"a": 1}


def test_bad_key_names_are_refused():
    for name in ("", "a.b", "a/b", "x" * 129):
        with pytest.raises(ValueError):
            FieldEncryptor(FakeTransit(), name)


def test_output_is_json_serialisable():
    _, enc = make()
    out = enc.encrypt_document(DOC, PATHS)
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize("mode", MODES)
def test_client_chosen_member_names_and_contexts_cannot_fill_the_caches(mode):
    from zerotrust.crypto.ciphertext import _b64d_shared, associated_data
    from zerotrust.crypto.jsonpath import MAX_MEMBER_CHARS, _member

    _, enc = make(mode)
    enc.encrypt_document({"card": {"x": "4111"}}, ["$.card.*"])
    before = (_member.cache_info().misses, associated_data.cache_info().misses)
    for n in range(3):  # ~1 MiB names were kept by three count-bounded caches: ~4 MiB per request
        with pytest.raises(FieldInputError, match="member name is longer"):
            enc.encrypt_document({"card": {str(n) * (1 << 20): "4111"}}, ["$.card.*"])
        with pytest.raises(FieldInputError, match="member name is longer"):
            enc.decrypt_document({"card": {str(n) * (MAX_MEMBER_CHARS + 1): "x"}}, ["$.card.*"], strict=False)
    assert (_member.cache_info().misses, associated_data.cache_info().misses) == before
    long_name = "n" * MAX_MEMBER_CHARS  # the limit itself is fine
    out = enc.encrypt_document({"card": {long_name: "4111"}}, ["$.card.*"])
    assert enc.decrypt_document(out, ["$.card.*"]) == {"card": {long_name: "4111"}}
    with pytest.raises(FieldInputError, match="member name is longer"):
        enc.encrypt_document({"a": 1}, ["$['" + "n" * (MAX_MEMBER_CHARS + 1) + "']"])
    with pytest.raises(FieldInputError, match="context is longer"):
        enc.encrypt_document({"a": 1}, ["$.a"], context="t" * 1025)
    # A ciphertext's wrapped-key part is decoded but not cached when it is longer than a real one.
    shared = _b64d_shared.cache_info().misses
    with pytest.raises(CryptoError):
        enc.decrypt_document({"a": "ztf1.e.k.1." + "A" * 16 + "." + "B" * 4000 + "." + "C" * 32}, ["$.a"])
    assert _b64d_shared.cache_info().misses == shared
