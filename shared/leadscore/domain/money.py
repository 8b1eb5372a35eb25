"""Money in minor units (integers), never floats.

Currencies are checked against ISO 4217 with pycountry; each currency's number of decimals
(the ISO 4217 "minor unit" column) comes from the `iso4217` package, which ships the ISO
table itself (JPY 0, EUR 2, KWD 3, CLF 4). Units with no minor unit in the table (gold,
SDR, test codes: "N.A.") count in hundredths, as before. Both are imported on first use,
so a cold start that never sees money does not pay for them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

NO_MINOR_UNIT = 2  # ISO's "N.A." (XAU, XDR...): hundredths


class MoneyError(ValueError):
    pass


def currency_code(value: object) -> str:
    """An ISO 4217 code in upper case, or MoneyError naming what was wrong.

    Error texts name the problem, never the value: they reach answers and log lines, and a
    field a stranger fills may hold a name or an address."""
    import pycountry

    if not isinstance(value, str) or len(value.strip()) != 3:
        raise MoneyError("currency is not a three-letter ISO 4217 code")
    code = value.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise MoneyError("currency is not an ISO 4217 currency")
    return code


@lru_cache(maxsize=512)
def exponent(code: str) -> int:
    """Decimals of an ISO 4217 currency (its minor unit): 0 for JPY, 2 for EUR, 3 for KWD."""
    import iso4217

    try:
        found = iso4217.Currency(code.upper()).exponent
    except ValueError:
        raise MoneyError("currency is not an ISO 4217 currency") from None
    return NO_MINOR_UNIT if found is None else int(found)


def to_major(amount_minor: int, code: str) -> Decimal:
    """19990 EUR -> Decimal('199.90'), exactly; 10000 JPY -> 10000, 10000 KWD -> 10."""
    return Decimal(amount_minor).scaleb(-exponent(code))


def to_minor(amount: object, code: str) -> int:
    """'199.90' EUR -> 19990. Refuses floats' guesses: the amount must be exact in minor units."""
    if isinstance(amount, bool) or amount is None:
        raise MoneyError("amount is not a number")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError("amount is not a number") from None
    if not value.is_finite():
        raise MoneyError("amount is not a finite number")
    minor = value.scaleb(exponent(code))
    if minor != minor.to_integral_value():
        raise MoneyError(f"amount has more decimals than {code} allows")
    return int(minor)
