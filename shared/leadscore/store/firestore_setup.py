"""Building the Firestore client, with configuration mistakes reported in one line and a
short deadline on every call.

Without this the client prints a long traceback when credentials are missing, and with
`FIRESTORE_EMULATOR_HOST` pointing at nothing the first call retries for five minutes.

Deadlines: the client's own defaults give each call 60 s and retry it for 60 s more, so a
request hung 60-90 s when Firestore was down (issue 21). `with_deadlines` gives every call
of the client (reads, queries, commits, and the transaction's begin, commit and rollback,
which take no per-call options) one budget, `LEADSCORE_FIRESTORE_DEADLINE_S`, retries
included, and turns a call that runs out of it into `StoreUnavailable` (503 with
Retry-After; one line in the CLI). Contention (`Aborted`) and preconditions pass through
unchanged: the adapter tells them apart.
"""

from __future__ import annotations

import socket
from typing import Any

from leadscore.config import Settings
from leadscore.errors import ConfigError, StoreUnavailable

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
    if emulator and not _emulator_answers(emulator):  # a request answers 503, not 500
        raise StoreUnavailable(f"FIRESTORE_EMULATOR_HOST={emulator} does not answer: start "
                               "the emulator or unset the variable")
    from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
    from google.cloud import firestore

    project = settings.google_cloud_project
    if emulator and not project:
        project = "leadscore-local"  # the emulator accepts any project id
    try:
        return with_deadlines(firestore.Client(project=project), settings.firestore_deadline_s)
    except DefaultCredentialsError:
        raise ConfigError("Firestore needs Google credentials: run `gcloud auth "
                          "application-default login`, or set FIRESTORE_EMULATOR_HOST for "
                          "the emulator") from None
    except (GoogleAuthError, ValueError) as exc:  # e.g. no project could be determined
        raise ConfigError(f"Firestore client could not start: {exc}") from None


def with_deadlines(client: Any, deadline_s: float) -> Any:
    """Give every RPC of `client` a budget of `deadline_s` seconds, retries included.

    The GAPIC layer looks up one wrapped callable per RPC (`_wrapped_methods`) and calls it
    with the DEFAULT retry and timeout unless a caller passes its own; replacing those
    defaults is the one place that also reaches the transaction's begin, commit and
    rollback. tests/hardening/test_store_deadlines.py proves it against a server that
    accepts connections and never answers, so a client upgrade that moves this fails there.
    """
    from google.api_core import exceptions as gexc
    from google.api_core import retry as retries

    transient = (gexc.DeadlineExceeded, gexc.ServiceUnavailable,
                 gexc.InternalServerError, gexc.ResourceExhausted)
    retry = retries.Retry(initial=0.1, maximum=1.0, multiplier=1.5,
                          predicate=retries.if_exception_type(*transient), timeout=deadline_s)
    wrapped = client._firestore_api._transport._wrapped_methods  # private: see above
    for rpc, call in list(wrapped.items()):
        wrapped[rpc] = _Deadlined(call, retry, deadline_s)
    return client


class _Deadlined:
    """One RPC with our default retry and timeout; running out of time is StoreUnavailable."""

    def __init__(self, call: Any, retry: Any, deadline_s: float) -> None:
        self._call, self._retry, self._deadline_s = call, retry, deadline_s

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions as gexc
        from google.api_core.gapic_v1.method import DEFAULT

        if kwargs.get("retry", DEFAULT) is DEFAULT:
            kwargs["retry"] = self._retry
        if kwargs.get("timeout", DEFAULT) is DEFAULT:
            kwargs["timeout"] = self._deadline_s
        try:
            return self._call(*args, **kwargs)
        except (gexc.RetryError, gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
            raise StoreUnavailable(
                f"Firestore did not answer within {self._deadline_s:g} s "
                f"(LEADSCORE_FIRESTORE_DEADLINE_S); retry later") from exc
