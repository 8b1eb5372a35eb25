"""The `leadscore` command: run the local server, check rules, look at leads."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from leadscore import jsonfmt, logs
from leadscore.catalog import FUNCTIONS
from leadscore.cli_calibrate import instant
from leadscore.cli_calibrate import register as register_calibration
from leadscore.cli_dashboard import register as register_dashboard
from leadscore.cli_esp import esp
from leadscore.cli_hubspot import hubspot
from leadscore.cli_rekey import register as register_rekey
from leadscore.config import Settings
from leadscore.container import Container, check_store_url, container, install, rules_text
from leadscore.domain.rules import (
    default_rules_text,
    parse_rules_file,
    parse_rules_json,
    rules_as_json,
)
from leadscore.domain.state import STAGES
from leadscore.errors import LeadscoreError


def _dump(data: Any) -> None:
    click.echo(jsonfmt.dumps(data, indent=2, ensure_ascii=False))


def _reading() -> Container:
    """The container for a command that only reads: it never creates an empty store. The
    rules are checked first, so a broken rules file is reported before a missing store."""
    app = container()
    check_store_url(app.settings.store)
    _ = app.rules
    app.existing_store()
    return app


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class _Commands(click.Group):
    """Configuration mistakes end in one clear line, not a traceback. Log lines go to stderr
    while a command runs: stdout is the command's output (`--json | python3 -m json.tool`)."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = logs.to_stderr(True)
        try:
            return self._invoke(ctx)
        finally:
            logs.to_stderr(previous)

    def _invoke(self, ctx: click.Context) -> Any:
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except LeadscoreError as exc:
            raise click.ClickException(exc.message) from None
        except sqlite3.DatabaseError as exc:  # corrupt, read-only or locked store file
            raise click.ClickException(f"store unavailable: {exc}") from None
        except ValidationError as exc:  # before `Exception`, which would swallow it
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors())
            raise click.ClickException(f"invalid settings: {problems}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("google."):  # Firestore unreachable, denied
                raise click.ClickException(
                    f"store unavailable: {type(exc).__name__}: {str(exc)[:200]}") from None
            raise


@click.group(cls=_Commands)
@click.option("--store", envvar=None, default=None,
              help="Override LEADSCORE_STORE: sqlite:///PATH, firestore or memory.")
def main(store: str | None) -> None:
    """leadscore: explainable lead scoring on Firestore or an embedded SQLite store."""
    if store:
        install(Container(Settings(store=store)))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port, 1-65535.")
@click.option("--store", "store_url", default=None, help="Store URL for this server.")
@click.option("--source", type=click.Path(exists=True, path_type=Path), default=None,
              help="functions/main.py to serve (default: this checkout's).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes (on SQLite they queue on one file lock; "
              "two were not reliably faster than one on 2 cores, with a C load generator "
              "too: README, Benchmarks).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker: requests served at once by each process.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request on stdout (addresses shown as lead ids).")
@click.option("--dev", is_flag=True,
              help="werkzeug's server with its reloader (restarts when code changes).")
def serve(host: str, port: int, store_url: str | None, source: Path | None, workers: int,
          threads: int, access_log: bool, dev: bool) -> None:
    """Serve every function locally at /<function_name>, on the embedded store by default."""
    from leadscore.server import serve as run

    if store_url:
        install(Container(Settings(store=store_url)))
    app = container()
    where = app.settings.sqlite_path() or app.settings.store
    click.echo(f"leadscore serving on http://{host}:{port} (store: {where}, "
               f"rules: {app.rules.version})")
    click.echo(f"  {'health':<18} http://{host}:{port}/healthz")
    for name in sorted(FUNCTIONS):
        click.echo(f"  {name:<18} http://{host}:{port}/{name}")
    if not app.settings.api_tokens():
        click.echo("  note: LEADSCORE_API_TOKEN is not set, so /ingest refuses every request")
    click.echo("  server: werkzeug with reloader (--dev)" if dev else
               f"  server: gunicorn, {workers} worker(s) x {threads} thread(s)")
    logs.to_stderr(False)  # a server logs on stdout, as the deployed functions do
    run(host, port, source, dev=dev, workers=workers, threads=threads, access_log=access_log)


@main.group()
def rules() -> None:
    """Check and show scoring rules files."""


@rules.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the validated rules as JSON (deploy it as LEADSCORE_RULES: "
                   "JSON rules are read without PyYAML, a faster cold start).")
def rules_check(file: Path, json_out: Path | None) -> None:
    """Validate FILE (YAML, or JSON for a .json file); every problem is listed with its rule
    and field."""
    try:
        parsed = parse_rules_file(rules_text(file), str(file))
    except LeadscoreError as exc:
        click.echo(f"{file}: invalid", err=True)
        for detail in exc.details or [{"field": "", "problem": exc.message}]:
            if "message" in detail:  # rules files: the rule, the field, then where exactly
                click.echo(f"  {detail['message']}  [at {detail['field']}]", err=True)
            else:
                click.echo(f"  {detail['field']}: {detail['problem']}".rstrip(), err=True)
        sys.exit(1)
    click.echo(f"{file}: ok (version {parsed.version}, {len(parsed.fit)} fit rules, "
               f"{len(parsed.engagement)} event rules)")
    if json_out is not None:
        text = rules_as_json(parsed)
        if parse_rules_json(text, str(json_out)).content_hash != parsed.content_hash:
            _fail(f"{json_out}: the JSON would not read back to the same rules; not written")
        json_out.write_text(text, "utf-8")
        click.echo(f"{json_out}: written (content hash {parsed.content_hash[:12]})")


@rules.command("default")
def rules_default() -> None:
    """Print the built-in rules, a starting point for your own file."""
    click.echo(default_rules_text(), nl=False)


@main.group()
def lead() -> None:
    """One lead."""


@lead.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lead_show(email: str, as_json: bool) -> None:
    """Show EMAIL's lead with its score breakdown and history (an id also works)."""
    from leadscore.cli_views import print_lead
    from leadscore.service.leads import describe, find_lead, shown

    app = _reading()
    found = find_lead(app.store, email)
    if found is None:
        _fail("no lead with that email or id")
        return
    now = app.now()
    data = describe(*shown(app.store, found, app.rules, now), app.rules, now)
    if as_json:
        _dump(data)
    else:
        print_lead(data)


@main.command()
@click.option("--now", callback=instant, help="Run as of this moment (ISO 8601 with zone).")
@click.option("--simulate", is_flag=True,
              help="Allow a --now ahead of the clock (on a copy of the store: it stores views "
                   "for that moment, which later runs leave as they are).")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def decay(now: datetime | None, simulate: bool, dry_run: bool, as_json: bool) -> None:
    """Apply inactivity decay and the non-opener rule to every lead that is due."""
    from leadscore.cli_views import progress
    from leadscore.service.decay import run_decay

    if now is not None and not (simulate or dry_run) and \
            now > datetime.now(UTC) + timedelta(minutes=1):
        # a run dated ahead stored views for a future moment, and later runs, finding
        # nothing due, never repaired them (an audit)
        _fail("--now is ahead of the clock: a decay run dated in the future stores views "
              "later runs leave as they are (add --simulate on a copy of the store)")
    app = container()
    with progress("decaying", enabled=not as_json) as step:
        summary = run_decay(app.store, app.rules, now or app.now(), dry_run=dry_run,
                            on_progress=step)
    if as_json:
        _dump(summary.as_json())
        return
    verb = "would change" if dry_run else "changed"
    click.echo(f"examined {summary.examined} due leads, {verb} {summary.decayed}: "
               f"{summary.stages_up} stage ups, {summary.stages_down} stage downs, "
               f"{summary.flagged_non_openers} new non-openers, "
               f"{summary.cleared_non_openers} cleared, in {summary.elapsed_s:.1f} s")


@main.group()
def export() -> None:
    """Export leads for other systems."""


@export.command("non-openers")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
def export_non_openers(fmt: str) -> None:
    """Leads flagged as non-openers (as of the last decay run), to suppress or remove."""
    from leadscore.cli_views import write_rows

    rows = [{"lead_id": x.lead_id, "email": x.email, "non_opener_since": x.non_opener_since,
             "last_sent_at": x.last_sent_at, "last_open_at": x.last_open_at,
             "email_status": x.email_status}
            for x in _reading().store.list_leads(non_opener=True, limit=1_000_000)]
    write_rows(rows, fmt, ["lead_id", "email", "non_opener_since", "last_sent_at",
                           "last_open_at", "email_status"])


@lead.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def lead_erase(email: str, yes: bool) -> None:
    """Erase EMAIL's lead: the lead, its history, order index entries and handovers (an id
    also works). An address is recorded as erased even when no lead is stored for it, as
    `POST /leads_api/leads/erase` does, so its later events are dropped (README, "Personal
    data"): a person may ask before any event of theirs arrived."""
    from leadscore.domain.identity import is_lead_id, lead_id_for
    from leadscore.service.erasure import erase_address
    from leadscore.service.leads import find_lead

    app = _reading()
    found = find_lead(app.store, email)
    if found is None and is_lead_id(email):  # an id names no address to record as erased
        _fail("no lead with that id (to record an address as erased, give the address)")
        return
    if found is None and not _an_address(email):
        _fail("not an email address or a lead id")
        return
    if not yes:
        click.confirm(f"Erase {found.lead_id} and all its history?" if found else
                      "No lead is stored for this address. Record it as erased, so its "
                      "later events are dropped?", abort=True)
    erased = erase_address(app.store, found.email if found else email, app.now(),
                           found_id=found.lead_id if found else None,
                           crm_tools=app.crm_tools())
    if not (found or erased):
        click.echo(f"no lead stored; the address is recorded as erased ({lead_id_for(email)}), "
                   "future events are dropped (a form, the person's own consent, starts a "
                   "new lead)")
        return
    app.erase_in_crm()  # what HubSpot does not confirm now, a later CRM sync sends
    click.echo(f"erased {found.lead_id if found else lead_id_for(email)}")


def _an_address(text: str) -> bool:
    """The check the leads API makes of an address to erase (every stored address passed
    it), so the CLI and the API record the same erasures."""
    from pydantic import ValidationError

    from leadscore.service.api_params import AddressBody

    try:
        AddressBody.model_validate({"email": text})
    except ValidationError:
        return False
    return True


@lead.command("history")
@click.argument("email")
def lead_history(email: str) -> None:
    """EMAIL's history as a readable timeline: every event, rule, version and point."""
    from leadscore.cli_views import print_timeline
    from leadscore.service.leads import find_lead, history_line

    app = _reading()
    found = find_lead(app.store, email)
    if found is None:
        _fail("no lead with that email or id")
        return
    print_timeline(found.email, [history_line(e) | {"items": [i.model_dump() for i in e.items]}
                                 for e in app.store.history(found.lead_id)])


@main.command()
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="The rules to rescore with (default: the configured rules).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rescore(rules_file: Path | None, dry_run: bool, as_json: bool) -> None:
    """Recompute every lead from its stored events under the rules."""
    from leadscore.cli_views import print_rescore, progress
    from leadscore.service.rescore import rescore as run

    app = container()
    try:
        rules = parse_rules_file(rules_text(rules_file), str(rules_file)) if rules_file \
            else app.rules
    except LeadscoreError as exc:
        _fail(exc.message)
        return
    if not dry_run and rules.content_hash != app.rules.content_hash:
        # leads written under rules not in force: the next event rebuilt them under the
        # rules in force, while the stage moves the rescore made were already queued for
        # sales (an audit)
        _fail(f"{rules_file} is not the rules in force (version {app.rules.version}): deploy "
              "these rules first (LEADSCORE_RULES, locally and in the functions) then run "
              "rescore; --dry-run shows the effect")
        return
    with progress("rescoring", enabled=not as_json, total=app.store.count_leads()) as step:
        report = run(app.store, rules, app.now(), dry_run=dry_run, baseline=app.rules,
                     on_progress=step)
    if as_json:
        _dump(report.model_dump(mode="json"))
    else:
        print_rescore(report.model_dump(mode="json"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(as_json: bool) -> None:
    """Score distribution, stage funnel, grade matrix and the thresholds' track record."""
    from leadscore.cli_views import print_report
    from leadscore.service.reports import build_report

    app = _reading()
    built = build_report(app.store, app.rules, app.now()).model_dump(mode="json")
    if as_json:
        _dump(built)
    else:
        print_report(built)


@export.command("leads")
@click.option("--stage", type=click.Choice(STAGES), default=None)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
def export_leads(stage: str | None, fmt: str) -> None:
    """Leads with their profile, score and status, for CRM imports."""
    from leadscore.cli_views import write_rows

    app = _reading()
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while page := app.store.iter_leads(after_id=after, limit=500):
        after = page[-1].lead_id
        rows += [{"lead_id": x.lead_id, "email": x.email, "score": round(x.score, 2),
                  "stage": x.stage, "grade": x.grade, "email_status": x.email_status,
                  "non_opener": x.non_opener, "last_activity_at": x.last_activity_at,
                  **{f"profile.{k}": v for k, v in x.profile.items()}}
                 for x in page if stage is None or x.stage == stage]
    columns = ["lead_id", "email", "score", "stage", "grade", "email_status", "non_opener",
               "last_activity_at"]
    columns += sorted({k for row in rows for k in row if k.startswith("profile.")})
    write_rows(rows, fmt, columns)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def providers(as_json: bool) -> None:
    """Registered providers, where they are served, and whether each is configured."""
    from leadscore.providers.registry import REGISTRY

    rows = REGISTRY.describe(container().settings)
    if as_json:
        _dump(rows)
        return
    for row in rows:
        state = "configured" if row["configured"] else "not configured: set " + ", ".join(
            row["settings"])
        route = f"/{row['function']}{row['path']}"
        click.echo(f"{row['name']:<12} {route:<30} {state}")


@main.group()
def leads() -> None:
    """Many leads."""


@leads.command("list")
@click.option("--stage", type=click.Choice(STAGES), default=None)
@click.option("--min-score", type=float, default=None)
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def leads_list(stage: str | None, min_score: float | None, limit: int, as_json: bool) -> None:
    """Leads ordered by score (as of their last scoring), highest first."""
    from leadscore.cli_views import print_leads
    from leadscore.service.leads import list_leads, summary

    app = _reading()
    found = list_leads(app.store, stage, min_score, limit)  # type: ignore[arg-type]
    rows = [summary(x) for x in found]
    if as_json:
        _dump(rows)
    elif not rows:
        asked = ([f"stage {stage}"] if stage else []) + (
            [f"score >= {min_score:g}"] if min_score is not None else [])
        total = app.store.count_leads()
        click.echo(f"no leads match {' and '.join(asked)} ({total} leads in the store)"
                   if asked else "no leads yet: send a form, an email event or a purchase "
                   "(see README, 'Try it')")
    else:
        print_leads(rows)


main.add_command(hubspot)
main.add_command(esp)
register_calibration(main)  # `calibrate` and `import outcomes`
register_rekey(main)  # `rekey`: unkeyed ids of earlier releases to keyed ids
register_dashboard(main)  # `dashboard recount`: the dashboard's statistics documents


if __name__ == "__main__":  # pragma: no cover
    main()
