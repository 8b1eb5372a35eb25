"""Cloud Functions loads this file: it re-exports every entry point by its deployed name."""

from email_webhook import email_webhook
from form_submission import form_submission
from inactivity_decay import inactivity_decay
from ingest import ingest
from purchase_webhook import purchase_webhook

__all__ = ["email_webhook", "form_submission", "inactivity_decay", "ingest", "purchase_webhook"]
