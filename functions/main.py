"""Cloud Functions loads this file: it re-exports every entry point by its deployed name."""

from email_webhook import email_webhook
from form_submission import form_submission
from ingest import ingest
from purchase_webhook import purchase_webhook

__all__ = ["email_webhook", "form_submission", "ingest", "purchase_webhook"]
