"""Building the Firestore client, with configuration mistakes reported in one line.

Without this the client prints a long traceback when credentials are missing, and with
`FIRESTORE_EMULATOR_HOST` pointing at nothing the first call retries for five minutes.
"""

from __future__ import annotations

import socket
from typing import Any

from leadscore.config import Settings
from leadscore.errors import ConfigError

PROBE_TIMEOUT_S = 2.0


def _emulator_answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"FIRESTORE_EMULATOR_HOST={host_port!r}: use HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def firestore_client(settings: Settings) -> Any:
    emulator = settings.firestore_emulator_host
    if emulator and not _emulator_answers(emulator):
        raise ConfigError(f"FIRESTORE_EMULATOR_HOST={emulator} does not answer: start the "
                          "emulator or unset the variable")
    from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
    from google.cloud import firestore

    project = settings.google_cloud_project
    if emulator and not project:
        project = "leadscore-local"  # the emulator accepts any project id
    try:
        return firestore.Client(project=project)
    except DefaultCredentialsError:
        raise ConfigError("Firestore needs Google credentials: run `gcloud auth "
                          "application-default login`, or set FIRESTORE_EMULATOR_HOST for "
                          "the emulator") from None
    except (GoogleAuthError, ValueError) as exc:  # e.g. no project could be determined
        raise ConfigError(f"Firestore client could not start: {exc}") from None
