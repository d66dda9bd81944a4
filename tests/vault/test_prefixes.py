"""The prefix index's rule and digests (search as recruiters type): which starts of a
name are indexed, how a typed word is looked up, and that the digests are keyed per
company with a key of their own (docs/security/encryption.md, "Search as you type")."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.accounts.helpers import fast_company
from vouch.core.context import company_context
from vouch.vault import keyring
from vouch.vault.fields import blind_index
from vouch.vault.normalise import PREFIX_MAX_CHARS, PREFIX_MIN_CHARS, name_prefixes, name_words, query_prefix
from vouch.vault.prefixes import PREFIX_LABEL, name_prefix_digests, prefix_digest


def starts(word: str) -> set[str]:
    return {word[:n] for n in range(PREFIX_MIN_CHARS, min(len(word), PREFIX_MAX_CHARS) + 1)}


# --- the rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Maria", {"mar", "mari", "maria"}),
        ("MARIA  marek", {"mar", "mari", "maria", "mare", "marek"}),
        # Two letters or fewer: no start is indexed (they are found as whole words only).
        ("Li Wu", set()),
        ("Ana Li", {"ana"}),
        # Accents of Latin and Greek letters are removed (NFKD), other scripts are kept.
        ("José", {"jos", "jose"}),
        ("Łukasz", starts("lukasz")),
        ("Müller", starts("muller")),
        ("Ærø", {"aer", "aero"}),
        ("Παπαδόπουλος", starts("παπαδοπουλοσ")),  # casefolded: the final sigma too
        ("Йозеф", starts("йозеф")),
        # CJK: characters as written, from the third one on; a two-character name has none.
        ("王小明", {"王小明"}),
        ("欧阳娜娜", {"欧阳娜", "欧阳娜娜"}),
        ("张伟", set()),
        # Apostrophes join, other punctuation separates: O'Brien and Mary-Jane as typed
        # either way ("OBrien", "O'Bri", "Mary Jane", "maryjane").
        ("O'Brien", starts("obrien") | starts("brien")),
        ("Mary-Jane", starts("maryjane") | starts("mary") | starts("jane")),
        ("Smith-O’Neill", starts("smithoneill") | starts("smith") | starts("oneill") | starts("neill")),
    ],
)
def test_the_starts_of_each_word_from_three_characters_are_indexed(name, expected):
    assert name_prefixes(name) == expected


def test_starts_are_cut_at_twelve_characters():
    word = "Wolfeschlegelsteinhausenbergerdorff"
    found = name_prefixes(word)
    assert max(len(start) for start in found) == PREFIX_MAX_CHARS == 12
    assert found == {word.casefold()[:n] for n in range(3, 13)}
    # A typed word longer than that is looked up by its first twelve characters.
    assert query_prefix("wolfeschlegelstein") == "wolfeschlege"


def test_a_long_name_has_a_bounded_number_of_starts():
    # 200 characters of short hyphenated words: at most 64 terms, 10 starts each.
    name = " ".join(f"abcdefghijklmn{i}-opq{i}" for i in range(12))[:200]
    assert len(name_prefixes(name)) <= 64 * (PREFIX_MAX_CHARS - PREFIX_MIN_CHARS + 1)


@pytest.mark.parametrize(
    ("typed", "looked_up"),
    [
        ("Mar", {"mar"}),
        ("mARi", {"mari"}),
        ("José", {"jose"}),
        ("O'Bri", {"obri"}),
        ("O’Brien", {"obrien"}),
        ("Mary-Jane", {"mary", "jane"}),
        ("王小明", {"王小明"}),
        # Under three characters: not looked up as a start (a whole word only).
        ("Ma", set()),
        ("张伟", set()),
        ("O'", set()),
    ],
)
def test_a_typed_word_is_looked_up_by_its_start_from_three_characters(typed, looked_up):
    assert {start for word in name_words(typed, query=True) if (start := query_prefix(word))} == looked_up
    for start in looked_up:  # and each start typed is a start the name itself indexes
        assert start in name_prefixes(typed) or start in name_prefixes(typed.replace("-", " "))


def test_every_typed_start_of_a_name_is_one_the_name_indexes():
    for name in ("Mary-Jane O'Brien", "José Müller", "Siobhán Ní Bhriain", "欧阳娜娜", "Παπαδόπουλος"):
        for word in name.split():
            for end in range(3, len(word) + 1):
                for typed in name_words(word[:end], query=True):
                    if (start := query_prefix(typed)) is not None:
                        assert start in name_prefixes(name), (name, word[:end])


# --- the digests ----------------------------------------------------------------------


@pytest.mark.django_db
def test_digests_are_keyed_per_company_with_a_key_of_their_own():
    a, b = fast_company(), fast_company()
    with company_context(a):
        mar_a = prefix_digest("mar")
        assert prefix_digest("mar") == mar_a  # the same start, the same digest
        assert prefix_digest("mari") != mar_a
        # Derived for this use from the index key (HKDF, the label as salt): not the index
        # key's own HMAC of the word, and not an unkeyed hash anyone could compute.
        index_key = keyring.keys_for(a.pk).index
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=PREFIX_LABEL, info=b"").derive(index_key)
        assert mar_a == hmac.digest(key, b"mar", hashlib.sha256).hex()[:32]
        assert key != index_key
        assert mar_a != blind_index("name", "mar")
        assert mar_a not in {
            hashlib.sha256(b"mar").hexdigest()[:32],
            hmac.digest(index_key, b"mar", "sha256").hex()[:32],
        }
        maria_a = name_prefix_digests("Maria")
        assert maria_a == {prefix_digest(start) for start in ("mar", "mari", "maria")}
    with company_context(b):
        assert prefix_digest("mar") != mar_a
        assert not name_prefix_digests("Maria") & maria_a
    assert prefix_digest("mar", company_id=a.pk) == mar_a  # the company named, outside its context


@pytest.mark.django_db
def test_a_start_under_three_characters_is_refused_and_a_long_one_cut():
    with company_context(fast_company()):
        for short in ("", "m", "ma", "张伟"):
            with pytest.raises(ValueError, match="at least 3 characters"):
                prefix_digest(short)
        assert prefix_digest("wolfeschlegelstein") == prefix_digest("wolfeschlege")
        assert prefix_digest("wolfeschlege") != prefix_digest("wolfeschleg")
