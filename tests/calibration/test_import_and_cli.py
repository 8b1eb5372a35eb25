"""`leadscore import outcomes FILE.csv` and `leadscore calibrate` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from leadscore.cli import main
from leadscore.container import install
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import default_rules, default_rules_text
from leadscore.service.ingest import ingest
from leadscore.service.outcomes_import import import_outcomes
from leadscore.store.memory import MemoryStore
from leadscore.store.sqlite import SqliteStore

from .generator import all_events, generate

NOW = datetime(2026, 11, 1, tzinfo=UTC)

CSV = """email,outcome,occurred_at,amount,currency,reason,id
ana@acme.com,deal_won,2026-10-01T10:00:00Z,1250.00,EUR,,deal-1
bob@acme.com,opportunity_created,2026-10-02T10:00:00,,,,
not-an-address,deal_won,2026-10-03T10:00:00Z,,,,deal-3
cy@acme.com,deal_maybe,2026-10-03T10:00:00Z,,,,deal-4
dee@acme.com,deal_lost,2026-10-04T10:00:00Z,,,too expensive,deal-5
eve@acme.com,deal_won,yesterday,,,,deal-6
fay@acme.com,deal_won,2026-10-05T10:00:00Z,12.345,EUR,,deal-7
gus@acme.com,deal_won,2030-01-01T00:00:00Z,,,,deal-8
"""


def test_import_records_good_rows_and_reports_bad_ones_by_line() -> None:
    # GIVEN a CSV export with five bad rows among three good ones
    store, rules = MemoryStore(), default_rules()
    # WHEN it is imported, twice
    first = import_outcomes(store, rules, CSV.splitlines(keepends=True), NOW)
    again = import_outcomes(store, rules, CSV.splitlines(keepends=True), NOW)
    # THEN the good rows are outcomes on their leads, counted once, adding no points
    assert (first.rows, first.applied, first.bad) == (8, 3, 5)
    assert (again.applied, again.duplicates) == (0, 3)
    assert [b.line for b in first.bad_rows] == [4, 5, 7, 8, 9]
    assert "email" in first.bad_rows[0].problem and "outcome" in first.bad_rows[1].problem
    assert "ISO 8601" in first.bad_rows[2].problem and "decimals" in first.bad_rows[3].problem
    assert "future" in first.bad_rows[4].problem
    ana = store.get_lead(lead_id_for("ana@acme.com"))
    assert ana is not None and ana.counters["outcome_deal_won"] == 1 and ana.score == 0
    won = store.history(lead_id_for("ana@acme.com"))[0].event
    assert won is not None and won["amount_minor"] == 125000 and won["deal_id"] == "deal-1"
    bob = store.history(lead_id_for("bob@acme.com"))[0]
    assert bob.at == datetime(2026, 10, 2, 10, tzinfo=UTC)  # no zone: read as UTC
    lost = store.history(lead_id_for("dee@acme.com"))[0].event
    assert lost is not None and lost["reason"] == "too expensive"


def test_import_refuses_a_file_without_the_required_columns() -> None:
    report = import_outcomes(MemoryStore(), default_rules(), ["mail,result\n", "a@b.com,x\n"],
                             NOW)
    assert report.applied == 0 and report.bad_rows[0].line == 1
    assert "email, outcome, occurred_at" in report.bad_rows[0].problem


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    store, rules = SqliteStore(tmp_path / "leads.db"), default_rules()
    events = all_events(generate(400, NOW - timedelta(days=90), seed=3))
    for start in range(0, len(events), 500):
        ingest(store, rules, events[start:start + 500], NOW)
    store.close()
    return f"sqlite:///{tmp_path / 'leads.db'}"


def run(store_url: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["--store", store_url, *args])
    install(None)
    assert result.exit_code == code, result.output
    return result.output


def test_calibrate_compares_the_current_rules_with_a_candidate(store_url: str,
                                                               tmp_path: Path) -> None:
    data = yaml.safe_load(default_rules_text())
    data["version"] = "demo-heavy"
    data["engagement"]["form.demo_request"] = {"points": 90}
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(data))
    at = (NOW - timedelta(days=90)).isoformat()
    report = json.loads(run(store_url, "calibrate", "--rules", str(candidate), "--at", at,
                            "--json", "--target-precision", "0.3", "--target-volume", "50",
                            "--bootstrap", "20"))
    assert [r["rules_version"] for r in report["results"]] == ["default-2026.11", "demo-heavy"]
    assert report["included"] > 300 and report["conversions"] > 20
    assert report["results"][0]["for_target_volume"]["volume"] <= 50
    text = run(store_url, "calibrate", "--rules", str(candidate), "--at", at, "--bootstrap", "5",
               "--target-volume", "50")
    assert "ROC AUC" in text and "demo-heavy" in text and "by score quintile" in text
    assert "volume <= 50" in text and "< 0" in text


def test_calibrate_refuses_a_window_that_has_not_ended(store_url: str) -> None:
    out = run(store_url, "calibrate", "--at", datetime.now(UTC).isoformat(), code=1)
    assert "window ends" in out


def test_import_outcomes_command(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(CSV)
    out = run(store_url, "import", "outcomes", str(path), code=1)  # bad rows: exit 1
    assert "8 rows: 3 outcomes recorded, 0 already known, 5 bad" in out
    assert "line 4:" in out


def test_import_lists_undecodable_and_oversized_rows_and_imports_the_rest(
        store_url: str, tmp_path: Path) -> None:
    # GIVEN a CSV saved as Latin-1 ("España" in one row) with a 200 KB cell in another
    # (an audit saw both end the import with a traceback, importing nothing)
    path = tmp_path / "outcomes.csv"
    when = (NOW - timedelta(days=3)).isoformat()
    path.write_bytes(
        "email,outcome,occurred_at,reason\n"
        f"good.one@example.com,deal_won,{when},\n"
        f"latin@example.com,deal_lost,{when},Espa\xf1a\n".encode("latin-1")
        + f"big@example.com,deal_lost,{when},{'x' * 200_000}\n"
          f"good.two@example.com,deal_won,{when},\n".encode())
    # WHEN it is imported
    out = run(store_url, "import", "outcomes", str(path), code=1)
    # THEN the two bad rows are listed by line and the two good ones recorded
    assert "4 rows: 2 outcomes recorded, 0 already known, 2 bad" in out
    assert "line 3: not UTF-8 text" in out and "not a CSV row" in out


def test_calibrate_refuses_moments_and_windows_out_of_range(store_url: str) -> None:
    # GIVEN a back-test asked for year 9999, or a window of 100 million days (an audit saw
    # an OverflowError traceback) THEN each is a usage error naming the option
    out = run(store_url, "calibrate", "--at", "9999-12-31T00:00:00+00:00", code=2)
    assert "--at" in out and "1970 to 2200" in out
    out = run(store_url, "calibrate", "--window", "100000000", code=2)
    assert "--window" in out


def test_suggest_rules_refuses_with_too_few_conversions(store_url: str, tmp_path: Path) -> None:
    out = run(store_url, "suggest-rules", "--out", str(tmp_path / "c.yaml"),
              "--at", (NOW - timedelta(days=90)).isoformat(), code=1)
    assert "need at least 100" in out and not (tmp_path / "c.yaml").exists()


def test_calibrate_draws_an_svg_chart_carrying_the_reported_numbers(store_url: str,
                                                                    tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from leadscore.calibration_chart import lift

    data = yaml.safe_load(default_rules_text())
    data["version"] = "demo-heavy"
    data["engagement"]["form.demo_request"] = {"points": 90}
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(data))
    chart = tmp_path / "calibration.svg"
    # WHEN the current rules and a candidate are back-tested with --json and --chart
    report = json.loads(run(store_url, "calibrate", "--rules", str(candidate), "--at",
                            (NOW - timedelta(days=90)).isoformat(), "--bootstrap", "20",
                            "--json", "--chart", str(chart)))
    # THEN the file is a standalone SVG document (it parses as XML in the SVG namespace)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    root = ET.parse(chart).getroot()  # noqa: S314 (our own file)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    title = root.find("svg:title", ns)
    desc = root.find("svg:desc", ns)
    assert title is not None and title.text and "window 90 days" in title.text
    assert desc is not None and desc.text
    # ... whose description carries the numbers the JSON reports, for both rules sets
    text = desc.text
    assert f"{report['included']} leads back-tested, {report['conversions']} converted" in text
    base = report["base_rate"]
    for result in report["results"]:
        assert f"{result['name']} ({result['rules_version']}): ROC AUC {result['auc']:.3f}" \
            in text
        assert f"[{result['auc_interval']['low']:.3f}, {result['auc_interval']['high']:.3f}]" \
            in text
        assert f"Brier {result['brier']:.4f}" in text
        for band in result["quantile_bands"]:
            assert (f"{band['label']}: {band['leads']} leads, {band['conversions']} converted, "
                    f"{100 * band['rate']:.1f}%") in text
    # ... and whose drawn bars are the lifts of the stage bands (rate / base rate), by title
    bar_titles = [t.text for t in root.iterfind(".//svg:rect/svg:title", ns)]
    for result in report["results"]:
        for band in result["stage_bands"]:
            expected = lift(band["rate"], base) or 0.0
            assert f"{band['label']}: {expected:g}" in bar_titles
            assert expected == pytest.approx(
                band["conversions"] / band["leads"] / base if band["leads"] else 0.0, abs=0.005)
    # ... the reliability curve is drawn per rules set, and visible text heads the page
    lines = root.findall(".//svg:polyline", ns)
    assert len(lines) == 2 * len(report["results"])  # converted and base rate
    shown = " ".join(t.text or "" for t in root.iterfind(".//svg:text", ns))
    assert f"ROC AUC {report['results'][1]['auc']:.3f}" in shown
    band = report["results"][1]["stage_bands"][-1]
    assert f"{band['label']} {lift(band['rate'], base):.2f}" in shown


def test_calibrate_refuses_a_chart_that_is_not_svg_before_running(store_url: str,
                                                                  tmp_path: Path) -> None:
    out = run(store_url, "calibrate", "--chart", str(tmp_path / "c.png"), code=2)
    assert "SVG" in out and "rsvg-convert" in out and not (tmp_path / "c.png").exists()
