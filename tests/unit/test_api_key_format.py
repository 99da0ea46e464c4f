import re
import zlib

import pytest

from zerotrust.credentials.api_key_format import (
    ALPHABET,
    SCANNER_REGEX,
    base62,
    checksum,
    generate_key,
    is_well_formed,
    scanner_regex,
)


def reference_base62(n: int) -> str:
    """Independent re-implementation, most significant digit first, padded to 6."""
    digits = ""
    while n:
        digits = ALPHABET[n % 62] + digits
        n //= 62
    return digits.rjust(6, "0")


@pytest.mark.parametrize("random_part", ["0" * 32, "z" * 32, "abcdefghijklmnopqrstuvwxyzABCDEF"])
def test_checksum_is_base62_crc32_of_the_random_part(random_part):
    assert checksum(random_part) == reference_base62(zlib.crc32(random_part.encode()))


def test_base62_width_and_overflow():
    assert base62(0, 6) == "000000"
    assert base62(61, 2) == "0z"
    assert base62(2**32 - 1, 6) == reference_base62(2**32 - 1)
    with pytest.raises(ValueError):
        base62(62**6, 6)


def test_generated_key_shape():
    key = generate_key("zt")
    assert re.fullmatch(r"zt_[0-9A-Za-z]{38}", key)
    assert is_well_formed("zt", key)
    assert key[3:35] != generate_key("zt")[3:35]  # 190 random bits: a collision means a broken RNG


def test_random_part_uses_the_whole_alphabet():
    seen = set("".join(generate_key("zt")[3:35] for _ in range(200)))
    assert seen == set(ALPHABET)


def test_every_single_character_typo_is_detected():
    key = generate_key("zt")
    for i in range(3, len(key)):
        for c in ALPHABET:
            if c != key[i]:
                assert not is_well_formed("zt", key[:i] + c + key[i + 1:]), (i, c)


def test_adjacent_transpositions_are_detected():
    key = generate_key("zt")
    for i in range(3, len(key) - 1):
        if key[i] != key[i + 1]:
            assert not is_well_formed("zt", key[:i] + key[i + 1] + key[i] + key[i + 2:])


@pytest.mark.parametrize("mutate", [
    lambda k: k[:-1],                      # truncated
    lambda k: k + "0",                     # too long
    lambda k: "zx" + k[2:],                # other prefix
    lambda k: "zt-" + k[3:],               # wrong separator
    lambda k: k[:10] + "-" + k[11:],       # outside base62
    lambda k: k[:10] + "\u0661" + k[11:],  # a Unicode digit
    lambda k: k.upper(),
    lambda k: "",
])
def test_wrong_shape_is_rejected(mutate):
    assert not is_well_formed("zt", mutate(generate_key("zt")))


def test_prefix_must_match_exactly():
    key = generate_key("ztx")
    assert is_well_formed("ztx", key)
    assert not is_well_formed("zt", key)


def test_scanner_regexes_find_keys_in_text():
    key = generate_key("acme")
    text = f'config = {{"token": "{key}"}}\nAPI_KEY={generate_key("zt")} # leaked'
    assert re.findall(SCANNER_REGEX, text)[0] == key
    assert len(re.findall(SCANNER_REGEX, text)) == 2
    assert re.findall(scanner_regex("acme"), text) == [key]
    assert not re.findall(scanner_regex("acme"), "acme_" + "a" * 39)  # one character too many: no match
