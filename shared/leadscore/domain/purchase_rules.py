"""Purchase rules: points per order and value band, and bands on a buyer's totals.

Per order (each fades from its payment with the purchase half-life, refunds take back
their share): `per_purchase` points and `value_bands`, every band the order reaches adding
its points.

On the lead's totals (`bands`, each `{id, <measure>: {min?, max?}, points}`, inclusive,
exactly one measure): `count` (orders that count: paid and not fully refunded), `total_spend`
(their paid amounts less refunds), `average_basket` (total spend / count) and
`days_since_last` (whole UTC days since the latest order that counts was paid). These are
read from the aggregates the lead keeps (`LeadState.purchase_totals`, integers in minor
units per currency, and `purchase_days`, orders that count per UTC day), which are exact
whatever the order of purchases, refunds and redeliveries; so is every band's verdict.
A band's points do not fade: they hold while the lead is in the band (recency bands move
it out as days pass, and the view is refreshed then: `review.py`).

Money in rules is in *major* units. Minor units come from ISO 4217 (`money.exponent`):
10,000 minor units are 100 EUR, 10,000 JPY, 10 KWD. With `currency: EUR` and
`rates: {USD: 0.92, ...}` (what one unit of each currency is worth in EUR), every amount
is converted to EUR, exactly (decimal arithmetic), and spends in several currencies add
up; amounts in a currency with no rate are not valued (they still count as orders and get
`per_purchase`). Without `currency`, an amount is judged in its own currency: a value band
`{min: 100}` is 100 EUR or 100 USD or 100 JPY, and a total band holds if the spend in any
one currency is in it. `min_minor` (minor units of any currency) is the older form of a
value band's threshold, still read.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from leadscore.domain import decay, money
from leadscore.domain.conditions import Prepared, private_attrs
from leadscore.domain.defaults import empty_list
from leadscore.domain.rules_numbers import FINITE, Points
from leadscore.domain.state import PurchaseTotals

Measure = Literal["count", "total_spend", "average_basket", "days_since_last"]
MEASURES: tuple[Measure, ...] = ("count", "total_spend", "average_basket", "days_since_last")


def _currency(value: str) -> str:
    return money.currency_code(value)


CurrencyCode = Annotated[str, AfterValidator(_currency)]


class _Strict(Prepared):  # a copy with changes is validated again (conditions.Prepared)
    model_config = FINITE


class ValueBand(_Strict):
    """An order worth at least `min` (major units, see the module docstring), or the older
    `min_minor` (minor units of whatever currency), adds `points`."""

    min: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_minor: int | None = Field(default=None, ge=0)
    points: Points

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        if (self.min is None) == (self.min_minor is None):
            raise ValueError("give exactly one of min (major units) and min_minor")
        return self

    def label(self, currency: str | None) -> str:
        if self.min is None:
            return f"value>={self.min_minor}"
        return f"value>={self.min:f}" + (f" {currency}" if currency else "")


class Between(_Strict):
    """Inclusive bounds; at least one."""

    min: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    max: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self

    def holds(self, value: Decimal) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class PurchaseBand(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    count: Between | None = None
    total_spend: Between | None = None
    average_basket: Between | None = None
    days_since_last: Between | None = None
    points: Points
    reason: str | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> Self:
        given = [m for m in MEASURES if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(MEASURES)}")
        return self

    @property
    def measure(self) -> Measure:
        return next(m for m in MEASURES if getattr(self, m) is not None)

    @property
    def range(self) -> Between:
        found = getattr(self, self.measure)
        assert isinstance(found, Between)
        return found


class PurchaseRules(_Strict):
    per_purchase: Points = 0
    value_bands: list[ValueBand] = Field(default_factory=empty_list)
    half_life_days: decay.HalfLife | None = None
    currency: CurrencyCode | None = None  # money in these rules is in this currency
    rates: dict[CurrencyCode, Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict)  # one unit of the key's currency, in `currency`
    bands: list[PurchaseBand] = Field(default_factory=empty_list)
    # each band with its measure and range, found once (two properties per band and lead)
    _measured_bands: tuple[tuple[PurchaseBand, Measure, Between], ...] = PrivateAttr(default=())
    # the bands a lead that never bought is in (a count band from 0 up): most leads
    _no_orders_bands: dict[str, float] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.rates and self.currency is None:
            raise ValueError("rates need a base currency: add `currency` (e.g. EUR)")
        if self.currency is not None and self.currency in self.rates:
            raise ValueError(f"rates must not list the base currency {self.currency}")
        ids = [b.id for b in self.bands]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate purchase band ids: {', '.join(dupes)}")
        self._measured_bands = tuple((b, b.measure, b.range) for b in self.bands)
        # with no totals and no last day, no measure reads `now`: any moment gives the same
        self._no_orders_bands = self.band_points({}, None, datetime(2026, 1, 1, tzinfo=UTC))
        return self

    def value(self, amount_minor: int, currency: str) -> Decimal | None:
        """An amount in major units of the base currency (own currency without one); None
        when there is a base currency and no rate for this one."""
        major = Decimal(amount_minor).scaleb(-_decimals(currency))
        if self.currency is None or currency == self.currency:
            return major
        rate = self.rates.get(currency)
        return None if rate is None else major * rate

    def order_items(self, amount_minor: int, currency: str) -> list[tuple[str, float]]:
        """(rule, points) an order of this amount earns: per purchase, then value bands."""
        out = [("purchase.per_purchase", self.per_purchase)]
        if not self.value_bands:
            return out
        value = self.value(amount_minor, currency)
        for band in self.value_bands:
            met = amount_minor >= band.min_minor if band.min_minor is not None else (
                value is not None and band.min is not None and value >= band.min)
            if met:
                out.append((f"purchase.{band.label(self.currency)}", band.points))
        return out

    def order_points(self, amount_minor: int, currency: str | None) -> float:
        return sum(p for _, p in self.order_items(amount_minor, currency or ""))

    def band_points(self, totals: Mapping[str, PurchaseTotals], last_day: date | None,
                    now: datetime) -> dict[str, float]:
        """Each band the lead is in at `now`: its points, by band id."""
        out: dict[str, float] = {}
        if not self.bands:
            return out
        known = private_attrs(self)
        if not totals and last_day is None and known["_no_orders_bands"] is not None:
            return dict(known["_no_orders_bands"])
        counting = _counting(totals)
        bands: tuple[tuple[PurchaseBand, Measure, Between], ...] = known["_measured_bands"]
        for band, measure, between in bands:
            if any(between.holds(v) for v in self._judged(measure, counting, last_day, now)):
                out[band.id] = band.points
        return out

    def _judged(self, measure: Measure, counting: Mapping[str, PurchaseTotals],
                last_day: date | None, now: datetime) -> list[Decimal]:
        """The values a band on `measure` is judged on, given the currencies whose orders
        count (`_counting`): one, or one per currency when spends are judged each in its own
        currency (no base currency); none if nothing to judge."""
        if measure == "count":
            return [Decimal(sum(t.count for t in counting.values()))]
        if measure == "days_since_last":
            return [] if last_day is None else [Decimal(days_between(last_day, now))]
        valued = [(v, t.count) for c, t in counting.items()
                  if (v := self.value(t.net_minor, c)) is not None]
        if self.currency is None:  # each currency on its own
            return [v if measure == "total_spend" else v / n for v, n in valued]
        if not valued:
            return []
        spend = sum((v for v, _ in valued), Decimal(0))
        return [spend if measure == "total_spend" else spend / sum(n for _, n in valued)]

    def band_changes(self, last_day: date | None, now: datetime) -> list[datetime]:
        """Future moments a recency band starts or stops holding (UTC midnights)."""
        if last_day is None:
            return []
        out = []
        for band in self.bands:
            if band.measure != "days_since_last" or band.points == 0:
                continue
            for edge, after in ((band.range.min, 0), (band.range.max, 1)):
                if edge is not None:
                    day = last_day + timedelta(days=int(edge) + after)
                    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    if moment > now:
                        out.append(moment)
        return out


def _counting(totals: Mapping[str, PurchaseTotals]) -> dict[str, PurchaseTotals]:
    """The currencies with orders that count, in code order."""
    return {c: t for c, t in sorted(totals.items()) if t.count > 0}


def _decimals(currency: str) -> int:
    """ISO 4217 minor unit; a code ISO does not know (only `/ingest` can send one) reads as
    hundredths, as it always did, rather than failing the lead."""
    try:
        return money.exponent(currency)
    except money.MoneyError:
        return money.NO_MINOR_UNIT


def day_of(t: datetime) -> str:
    """The UTC day an order was paid, as its `purchase_days` key."""
    return t.astimezone(UTC).date().isoformat()


def days_between(day: date, now: datetime) -> int:
    """Whole UTC days from `day` to `now` (0 on the same day; never negative)."""
    return max(0, (now.astimezone(UTC).date() - day).days)
