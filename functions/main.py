"""Cloud Functions loads this file: it re-exports every entry point by its deployed name."""

from ingest import ingest

__all__ = ["ingest"]
