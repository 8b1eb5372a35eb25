"""Cloud Functions loads this file: it re-exports every entry point by its deployed name."""

from ingest import ingest
from purchase_webhook import purchase_webhook

__all__ = ["ingest", "purchase_webhook"]
