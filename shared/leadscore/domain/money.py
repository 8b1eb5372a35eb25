"""Money in minor units (integers), never floats.

Currencies are checked against ISO 4217 with pycountry. pycountry does not carry each
currency's number of decimals, so the few that differ from 2 are listed here (ISO 4217
"minor unit" column) rather than pulling in a whole locale database for one number.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

ZERO_DECIMALS = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


class MoneyError(ValueError):
    pass


def currency_code(value: object) -> str:
    """An ISO 4217 code in upper case, or MoneyError naming what was wrong."""
    import pycountry

    if not isinstance(value, str) or len(value.strip()) != 3:
        raise MoneyError(f"currency {value!r} is not a three-letter ISO 4217 code")
    code = value.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise MoneyError(f"currency {code!r} is not an ISO 4217 currency")
    return code


def exponent(code: str) -> int:
    return 0 if code in ZERO_DECIMALS else 3 if code in THREE_DECIMALS else 2


def to_minor(amount: object, code: str) -> int:
    """'199.90' EUR -> 19990. Refuses floats' guesses: the amount must be exact in minor units."""
    if isinstance(amount, bool) or amount is None:
        raise MoneyError(f"amount {amount!r} is not a number")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError(f"amount {amount!r} is not a number") from None
    if not value.is_finite():
        raise MoneyError(f"amount {amount!r} is not a finite number")
    minor = value.scaleb(exponent(code))
    if minor != minor.to_integral_value():
        raise MoneyError(f"amount {amount!r} has more decimals than {code} allows")
    return int(minor)
