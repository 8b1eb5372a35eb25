"""Where Firestore can live, from Google's documentation (checked 2026-11-22; the list
grows: check https://cloud.google.com/firestore/docs/locations before relying on it).

The database is created once and its location can never change, so the plan derives it
from the functions' region: the region itself when Firestore offers it as a regional
location (lowest latency, lowest price), or the continent's multi-region when the operator
asks for one (`firestore_multi_region: true`, higher availability, about twice the price).
`firestore_location` in the deploy file overrides both.
"""

from __future__ import annotations

REGIONAL = frozenset({
    # North America
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
    "us-west1", "us-west2", "us-west3", "us-west4",
    # South America
    "southamerica-east1", "southamerica-west1",
    # Europe
    "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6",
    "europe-west8", "europe-west9", "europe-west10", "europe-west12",
    # Middle East, Asia, Australia, Africa
    "me-central1", "me-central2", "me-west1",
    "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
    "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
    "australia-southeast1", "australia-southeast2", "africa-south1",
})

# Multi-region -> the region prefixes it serves (eur3: Belgium and Netherlands; nam5 and
# nam7: Iowa, Oklahoma, and for nam7 also Northern Virginia).
MULTI_REGIONS = {"eur3": ("europe-",), "nam5": ("us-", "northamerica-"),
                 "nam7": ("us-", "northamerica-")}
DEFAULT_MULTI_REGION = {"europe-": "eur3", "us-": "nam5", "northamerica-": "nam5"}


def multi_region_for(region: str) -> str | None:
    return next((m for prefix, m in DEFAULT_MULTI_REGION.items()
                 if region.startswith(prefix)), None)


def serves(location: str, region: str) -> bool:
    """True when a database at `location` is the region's own or its continent's."""
    if location in MULTI_REGIONS:
        return region.startswith(MULTI_REGIONS[location])
    return location == region


def firestore_location(region: str, multi_region: bool, override: str | None) -> str:
    """The database location for functions in `region`; ValueError says what to set."""
    if override:
        if override not in REGIONAL and override not in MULTI_REGIONS:
            raise ValueError(f"firestore_location {override!r} is not a Firestore location")
        return override
    if multi_region:
        chosen = multi_region_for(region)
        if chosen is None:
            raise ValueError(f"no Firestore multi-region serves {region}; set "
                             "firestore_location to a regional location")
        return chosen
    if region not in REGIONAL:
        raise ValueError(f"Firestore has no regional location {region}; set "
                         "firestore_location (e.g. a nearby region, or eur3/nam5)")
    return region
