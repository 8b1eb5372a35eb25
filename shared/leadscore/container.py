"""The one composition root: builds settings, rules and the store once, lazily.

Importing this module builds nothing (cold starts matter); the first request does. It only
checks that the packages imported later are installed (leadscore.dependencies).
Tests swap the whole container with `install(...)`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from leadscore import jsonfmt, logs
from leadscore.config import Settings
from leadscore.dependencies import check_installed
from leadscore.domain.happenings import DomainEvent, LeadScored, NonOpenerFlagged, StageChanged
from leadscore.domain.identity import use_id_key
from leadscore.domain.rules import Rules, default_rules, parse_rules_file
from leadscore.errors import ConfigError
from leadscore.store.port import LeadStore

if TYPE_CHECKING:  # the handover thread is started by the first change that has a sink
    from concurrent.futures import Future, ThreadPoolExecutor
    from pathlib import Path

# Every entry point and command loads this module at start: a bundle missing a package that
# is imported lazily fails here, naming it, instead of answering 500 on the first request
# that needs it.
check_installed()


def build_store(url: str, settings: Settings, *, must_exist: bool = False) -> LeadStore:
    """The store `url` names. `must_exist` (read-only commands) refuses to create an empty
    SQLite database where none is, so a command run from the wrong place says so instead of
    answering "no lead" from a fresh file."""
    if url.startswith("sqlite:///"):
        from leadscore.store.sqlite import SqliteStore

        path = settings.model_copy(update={"store": url}).sqlite_path()
        assert path is not None
        if must_exist and str(path) != ":memory:" and not path.exists():
            raise ConfigError(f"no leadscore database at {path}: nothing stored yet, or set "
                              "LEADSCORE_HOME / LEADSCORE_STORE (sqlite:////absolute/path.db)")
        return SqliteStore(path)
    if url == "memory":
        from leadscore.store.memory import MemoryStore

        return MemoryStore()
    check_store_url(url)
    return _firestore_store(settings)


def check_store_url(url: str) -> None:
    """Refuse a store URL of no kind we know, before anything else is looked at."""
    if not (url.startswith("sqlite:///") or url in ("memory", "firestore")):
        raise ConfigError(f"LEADSCORE_STORE={url!r}: use sqlite:///PATH, firestore or memory")


def _firestore_store(settings: Settings) -> LeadStore:
    """A Firestore client, or one clear line for each way its configuration can be wrong,
    found within seconds (the client itself would wait minutes on a dead emulator)."""
    from leadscore.store.firestore import FirestoreStore
    from leadscore.store.firestore_setup import firestore_client

    return FirestoreStore(firestore_client(settings), settings.firestore_collection)


def rules_text(path: Path, what: str = "rules file") -> str:
    """A rules file's text, or a ConfigError naming the problem (a file saved as UTF-16 or
    Latin-1 ended every command with a UnicodeDecodeError traceback)."""
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not UTF-8 text (byte {exc.start}); save it as "
                          "UTF-8") from None


def load_rules(settings: Settings) -> Rules:
    if settings.rules is None:
        return default_rules()
    return parse_rules_file(rules_text(settings.rules, "LEADSCORE_RULES"), str(settings.rules))


class Container:
    def __init__(self, settings: Settings | None = None, store: LeadStore | None = None,
                 rules: Rules | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings or Settings()
        self._store = store
        self._rules = rules
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._sesv2: Any = None
        self._sweeper: ThreadPoolExecutor | None = None
        self._queued_sweep: Future[None] | None = None
        self._crm_queue: Any = None
        self._crm_erasing: Future[Any] | None = None  # the last CRM erasure sweep started
        logs.configure(self.settings.log_level)
        use_id_key(self.settings.id_key.get_secret_value())
        if self.settings.store == "firestore" and not (
                self.settings.id_key.get_secret_value() or self.settings.firestore_emulator_host):
            logs.error("LEADSCORE_ID_KEY is not set: lead ids use the public local key and "
                       "can be reversed by guessing addresses; set it before going live")

    @cached_property
    def rules(self) -> Rules:
        return self._rules or load_rules(self.settings)

    @property
    def store(self) -> LeadStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = build_store(self.settings.store, self.settings)
        return self._store

    def existing_store(self) -> LeadStore:
        """The store for read-only commands: never creates an empty embedded database."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = build_store(self.settings.store, self.settings,
                                              must_exist=True)
        return self._store

    def now(self) -> datetime:
        return self._clock()

    def store_health(self) -> str | None:
        """None if the store answers a read now, else one line saying why not (`/healthz`
        answers 503 with it: a corrupt or read-only SQLite file, Firestore unreachable)."""
        try:
            self.store.get_lead("l_healthcheck")
            if self.settings.store.startswith("sqlite:///"):  # a read-only file reads fine
                import sqlite3

                path = self.settings.store.removeprefix("sqlite:///")
                with sqlite3.connect(path, timeout=2) as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("ROLLBACK")
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        return None

    # Outside edges, replaceable in tests: the network fetch of SNS signing certificates and
    # the SNS subscription confirmation call.
    def fetch_sns_certificate(self, url: str) -> bytes:
        from leadscore.providers.ses import fetch_certificate

        return fetch_certificate(url)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Publish JSON to a Pub/Sub topic (a name in GOOGLE_CLOUD_PROJECT, or a full path).

        Honours PUBSUB_EMULATOR_HOST, so tests and `leadscore serve` can use the emulator."""
        from google.cloud.pubsub_v1 import PublisherClient

        with self._lock:
            if self._publisher is None:
                self._publisher = PublisherClient()
        path = topic if topic.startswith("projects/") else (
            f"projects/{self.settings.google_cloud_project}/topics/{topic}")
        self._publisher.publish(path, jsonfmt.dumps(data).encode()).result(timeout=60)

    def suppress_in_ses(self, email: str) -> None:
        """Add a non-opener to the SES account suppression list (SESv2), so SES stops
        sending to it. SES knows two reasons; BOUNCE is the one that stops all mail. Uses
        the standard AWS credential chain (e.g. AWS_ACCESS_KEY_ID from Secret Manager)."""
        with self._lock:
            if self._sesv2 is None:
                import boto3

                self._sesv2 = boto3.client("sesv2",
                                           region_name=self.settings.ses_suppression_region)
        self._sesv2.put_suppressed_destination(EmailAddress=email, Reason="BOUNCE")

    def handover_sinks(self) -> list[Callable[[dict[str, Any]], None]]:
        settings = self.settings
        sinks: list[Callable[[dict[str, Any]], None]] = []
        if settings.handover_topic:
            from leadscore.service.handover import pubsub_sink

            sinks.append(pubsub_sink(settings.handover_topic, self.publish))
        secret = settings.handover_secret.get_secret_value()
        for url in self._handover_urls():  # the webhook code only where one is configured
            from leadscore.service.handover import webhook_sink

            sinks.append(webhook_sink(url, secret))
        return sinks + self.integration_sinks()  # Slack and HubSpot, when configured

    def handover_configured(self) -> bool:
        """Whether `handover_sinks` would return any sink, from the same settings it reads:
        every request that changes a stage asks, and building the sinks (a Slack notifier,
        a webhook signer per URL) only to count them was per-request work (issue 20)."""
        return bool(self.settings.handover_topic or self._handover_urls()
                    or self._slack_url())

    def _handover_urls(self) -> list[str]:
        return [u for u in (u.strip() for u in self.settings.handover_webhook_urls.split(","))
                if u]

    def _slack_url(self) -> str:
        return self.settings.slack_webhook_url.get_secret_value()

    def hand_over(self) -> None:
        """Deliver pending stage changes (after a write that changed stages, and daily)."""
        from leadscore.service.handover import deliver_pending

        sinks = self.handover_sinks()
        if not sinks:
            return
        try:
            deliver_pending(self.store, sinks, self.now,
                            attempts=self.settings.handover_attempts,
                            base_s=self.settings.handover_backoff_s)
        except Exception:  # noqa: BLE001 - the changes are stored; a later call delivers them
            logs.exception("handover sweep failed; pending changes stay pending")

    def dispatch(self, events: Sequence[DomainEvent], *, sweep: bool = False,
                 shard: bool = False) -> None:
        """Deliver what a use case reports (`result.events`), the one place that does.

        A flagged non-opener goes to `LEADSCORE_NON_OPENER_TOPIC` and, if configured, the SES
        suppression list; any stage change starts one handover sweep in the background,
        after the change is committed and without waiting for it (the changes wait in the
        outbox, so the sweep also retries earlier ones). `sweep` runs the sweep here and
        waits for it (the scheduled job retries earlier handovers even when it changed no
        stage). `shard`: a decay shard's run, which syncs the email tools and the CRM only
        for its own changes; the full comparison with them runs once per decay run, on the
        tick (64 shards each comparing every lead would read the whole store 64 times)."""
        for event in events:
            if isinstance(event, NonOpenerFlagged):
                self.announce_non_opener(event)
        if sweep:
            # the scheduled job has the time, and waits for its sweep; on the handover
            # thread, so it never overlaps a background sweep of this process (both would
            # send the same pending change)
            self._handover_thread().submit(self.hand_over).result()
            # scores and clean-up to the email tools: from the scheduled job only, never
            # inside a provider's request
            named = [e.lead_id for e in events if isinstance(e, NonOpenerFlagged | StageChanged)]
            full = self.settings.esp_full_sweep and not shard
            self.sync_esp(None if full else named)
            scored = [e.lead_id for e in events if isinstance(e, LeadScored | StageChanged)]
            full_crm = self.settings.hubspot_full_sweep and not shard
            self.sync_crm(None if full_crm else named + scored, forget_expired=not shard)
        else:
            self.sync_crm_soon([e.lead_id for e in events
                                if isinstance(e, LeadScored | StageChanged)])
            if any(isinstance(event, StageChanged) for event in events):
                self.hand_over_soon()

    def hand_over_soon(self) -> None:
        """Start a handover sweep on this process's handover thread and return at once.

        Delivery never runs inside the provider's request (a hanging receiver held it 31.6 s
        in issue 21): the change was committed to the outbox with the lead, this thread
        delivers it after the request is answered, and if the instance is frozen or stopped
        first (Cloud Run throttles CPU between requests) the scheduled job's sweep delivers
        it. One thread, so sweeps of one process never overlap; a sweep still queued will see
        this change too, so no second one is queued behind it."""
        if not self.handover_configured():  # nowhere to deliver: no thread hop (issue 20)
            return
        sweeper = self._handover_thread()
        with self._lock:
            queued = self._queued_sweep
            if queued is not None and not (queued.running() or queued.done()):
                return
            self._queued_sweep = sweeper.submit(self.hand_over)

    def _handover_thread(self) -> ThreadPoolExecutor:
        """This process's one handover thread: every sweep runs on it, one at a time."""
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._sweeper is None:
                self._sweeper = ThreadPoolExecutor(1, thread_name_prefix="handover")
            return self._sweeper

    def handovers_settled(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the background sweeps started so far (tests, and a
        server shutting down); True if none is left running."""
        from concurrent.futures import TimeoutError as FutureTimeout

        with self._lock:
            started = [f for f in (self._queued_sweep, self._crm_erasing) if f is not None]
        try:
            for last in started:  # one thread: the last submitted of each ends last
                last.result(timeout=timeout_s)
        except FutureTimeout:
            return False
        return True

    def announce_non_opener(self, event: NonOpenerFlagged) -> None:
        settings = self.settings
        if settings.non_opener_topic:
            self.publish(settings.non_opener_topic, {
                "lead_id": event.lead_id, "email": event.email,
                "flagged_at": event.at.isoformat()})
        if settings.ses_suppression_region:
            self.suppress_in_ses(event.email)

    def verify_captcha(self, token: str, remote_ip: str | None) -> bool:
        from leadscore.providers.captcha import verify_token

        secret = self.settings.captcha_secret.get_secret_value()
        return verify_token(self.settings.captcha_verify_url, secret, token, remote_ip)

    def confirm_sns_subscription(self, topic_arn: str, token: str) -> str:
        from leadscore.providers.ses import confirm_subscription

        return confirm_subscription(topic_arn, token)

    # Handover integrations (issue 18); None when not configured.
    def slack_notifier(self) -> Any:
        s, url = self.settings, self._slack_url()
        if not url:  # every stage change asks: no Slack code loaded where none is configured
            return None
        from leadscore.integrations.slack import SlackNotifier

        return SlackNotifier(url, action_url=s.slack_action_url,
                             action_secret=s.slack_action_secret.get_secret_value(),
                             action_ttl_s=s.slack_action_ttl_s)

    def hubspot_crm(self) -> Any:
        token = self.settings.hubspot_token.get_secret_value()
        if not token:  # asked by every decay run: no HubSpot code loaded where none is set
            return None
        from leadscore.integrations.hubspot import HubSpotCrm

        return HubSpotCrm(token, self.settings.hubspot_api_url)

    def deal_contact_emails(self, deal_id: str) -> list[str]:
        """The addresses of a HubSpot deal's contacts (an outside call; tests fake it)."""
        from leadscore.errors import TransientError
        from leadscore.integrations.ports import RetryableDelivery

        crm = self.hubspot_crm()
        if crm is None:
            return []
        try:
            emails: list[str] = crm.deal_contact_emails(deal_id)
        except RetryableDelivery as exc:
            raise TransientError(f"HubSpot did not answer the contact lookup: {exc}") from None
        return emails

    def integration_sinks(self) -> list[Callable[[dict[str, Any]], None]]:
        s = self.settings
        sinks: list[Callable[[dict[str, Any]], None]] = []
        notifier = self.slack_notifier()  # HubSpot has its own outbox: sync_crm
        if notifier is not None:  # the integrations load only where one is configured
            from leadscore.integrations.handover_sinks import notifier_sink

            sinks.append(notifier_sink(notifier, self.store, stages=s.slack_stages,
                                       dashboard_url=s.dashboard_url,
                                       show_email=s.slack_show_email, rules=self.rules))
        return sinks

    # Scores into the CRM (issue 18): HubSpot through its sync records, never in a request.
    def sync_crm(self, lead_ids: Sequence[str] | None = None, queued: bool = False,
                 forget_expired: bool = True) -> Any:
        """One CRM sync run (`lead_ids`: only these leads): the decay job's sweep and the
        background queue's unit. A failure leaves the differences for the next run, so it
        is logged, never raised. Returns the run's report (None: no CRM configured).
        `forget_expired` (no CRM configured): forget erasures past their KEEP; a decay
        shard leaves it to its run's tick, so a run reads `crm_erasures` once, not once
        per shard (the tick runs every day: a record is forgotten at most a day late)."""
        from leadscore.service.crm_outbox import sync_crm

        crm = self.hubspot_crm()
        if crm is None:
            if forget_expired:  # no CRM now: still forget erasures older than their KEEP
                self.erase_in_crm()
            return None
        try:
            report = sync_crm(self.store, crm, "hubspot", self.rules, self.now(),
                              step=self.settings.hubspot_score_step, lead_ids=lead_ids,
                              attempts=self.settings.hubspot_attempts, queued=queued,
                              clock=self.now)
        except Exception:  # noqa: BLE001 - the next sweep finds the same differences
            logs.exception("crm sync failed; differences stay for the next sweep")
            return None
        logs.info("crm sync", **report.model_dump(exclude={"last_lead_id"}))
        return report

    def crm_tools(self) -> list[str]:
        """The configured CRM syncs by tool name: an erasure deletes the contact there."""
        return ["crm:hubspot"] if self.settings.hubspot_token.get_secret_value() else []

    def erase_in_crm(self) -> Any:
        """Delete the contacts of erased leads from the CRM (`service/crm_erasure.py`);
        what fails stays recorded for a later sweep, so it is logged, never raised. With no
        CRM configured, only records older than their KEEP are forgotten (SQLite has no TTL:
        the addresses would stay for good)."""
        from leadscore.service.crm_erasure import erase_in_crm

        crm = self.hubspot_crm()
        try:
            return erase_in_crm(self.store, {"crm:hubspot": crm} if crm else {}, self.now,
                                attempts=self.settings.hubspot_attempts)
        except Exception:  # noqa: BLE001 - recorded: the next CRM sync sends it
            logs.exception("crm erasure sweep failed; the next sweep retries")
            return None

    def erase_in_crm_soon(self) -> None:
        """After an erasure: its CRM deletion on the background thread, not in the request."""
        if self.crm_tools():
            erasing = self._handover_thread().submit(self.erase_in_crm)
            with self._lock:
                self._crm_erasing = erasing

    def crm_queue(self) -> Any:
        from leadscore.service.crm_outbox import CrmQueue, CrmRunReport

        def run(lead_ids: list[str]) -> CrmRunReport:
            report = self.sync_crm(lead_ids, queued=True)
            return report or CrmRunReport(crm="hubspot", pending=len(lead_ids))

        with self._lock:
            if self._crm_queue is None:
                self._crm_queue = CrmQueue(run, self.now)
        return self._crm_queue

    def sync_crm_soon(self, lead_ids: Sequence[str]) -> None:
        """Queue scored leads for the CRM; a background thread syncs them after the
        request is answered (the decay job's sweep catches whatever this misses)."""
        if lead_ids and self.settings.hubspot_token.get_secret_value():
            self.crm_queue().add(lead_ids)

    # Email tools (issue 22): the configured EspSync objects and one sync sweep over them.
    def esp_syncs(self) -> list[Any]:
        from leadscore.domain.segments import segments_of
        from leadscore.integrations.esp.registry import configured

        return configured(self.settings, segments_of(self.rules))

    def usable_esp_syncs(self) -> list[Any]:
        """The configured tools, each built on its own: a misconfigured one (a removal
        without its list or group) is logged by name and left out, and the others sync."""
        from leadscore.domain.segments import segments_of
        from leadscore.integrations.esp.registry import MODULES, build

        segments, built = segments_of(self.rules), []
        for tool in MODULES:
            try:
                esp = build(tool, self.settings, segments)
            except ConfigError as exc:
                logs.error("email tool misconfigured; not synced", tool=tool,
                           problem=exc.message)
                continue
            if esp is not None:
                built.append(esp)
        return built

    def sync_esp(self, lead_ids: Sequence[str] | None = None) -> None:
        """Sync every configured tool (`lead_ids`: only these leads); a failure leaves the
        differences for the next sweep, so it is logged, never raised."""
        syncs = self.usable_esp_syncs()
        if not syncs:  # no tool configured: no page of leads read for nobody to compare
            return
        from leadscore.service.esp_sync import sync_tools

        # one pass over the leads for every tool; a tool's failure stops that tool only
        try:
            reports = sync_tools(self.store, syncs, self.rules, self.now(), lead_ids=lead_ids,
                                 cleanup=self.settings.esp_cleanup,
                                 attempts=self.settings.esp_attempts, isolate=True)
        except Exception:  # noqa: BLE001 - the next sweep finds the same differences
            logs.exception("esp sync failed; differences stay for the next sweep")
            return
        for report in reports:
            logs.info("esp sync", **report.model_dump(exclude={"last_lead_id"}))


_current: Container | None = None
_guard = threading.Lock()


def container() -> Container:
    global _current
    if _current is None:
        with _guard:
            if _current is None:
                _current = Container()
    return _current


def install(new: Container | None) -> None:
    """Replace the process-wide container (tests, `leadscore serve --store`)."""
    global _current
    with _guard:
        _current = new
