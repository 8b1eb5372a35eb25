"""Addresses never reach a log line, whatever a stranger sends, and scrubbing them costs work
in proportion to what is logged (found by a review: the old pattern was quadratic, and form
parse errors repeated the whole body into the "request refused" line).

- every spelling `find_lead` resolves to a lead (percent-encoded letters, NFKC's fullwidth
  at sign, an apostrophe in the local part, a quoted repr, a twice-encoded "@") becomes that
  lead's id, with nothing of the address left readable;
- a logged string is cut at `logs.LONGEST` characters, never in the middle of an address;
- a form body that is not form-encoded gets a 400 that names the problem without repeating
  the body, and the refusal's log line does not repeat it either.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from functional.conftest import SECRETS, client_for
from leadscore import logs
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for


@pytest.mark.parametrize(("written", "address"), [
    ("/leads_api/leads/ana%40b%C3%BCcher.de", "ana@bücher.de"),
    ("ana\uff20example.com", "ana@example.com"),  # fullwidth at sign: NFKC makes it "@"
    ("ana\ufe6bexample\uff0ecom", "ana@example.com"),  # small at sign, fullwidth stop
    ("ana.o'brien@example.com", "ana.o'brien@example.com"),
    ("ana+news@example.com", "ana+news@example.com"),
    ("/leads_api/leads/ana%2540example.com", "ana@example.com"),  # encoded twice
    ("?email=ana@example.com&page=2", "ana@example.com"),
])
def test_every_spelling_of_an_address_becomes_its_lead_id(written: str, address: str) -> None:
    # GIVEN an address spelled as a browser, a repr or a stranger may spell it
    # WHEN a log line carries it
    line = logs.scrub(f"refused {written!r} for now")
    # THEN the lead id of the address stands in its place and nothing of it is readable
    assert lead_id_for(address) in line
    for part in ("ana", "brien", "example", "cher", "news"):
        assert part not in line, line
    # AND the text around it is kept (a quoted repr keeps its quote, a URL its delimiters)
    assert line.startswith("refused ") and line.endswith(" for now")


def test_text_that_only_looks_like_an_address_is_left_alone() -> None:
    # GIVEN text with at signs and percent signs but no address ("a@b.c" was here: the app
    # accepts it as an address, one-letter top-level domain and all, so it is scrubbed now)
    text = "100% sure; pkg@1.2.3; root@localhost; %40%40; user@@example"
    # WHEN it is scrubbed THEN it is unchanged
    assert logs.scrub(text) == text


@pytest.mark.parametrize("tail", ["ana.secret@example.com", "ana.secret%40example.com"])
def test_a_long_string_is_cut_before_an_address_it_would_split(tail: str) -> None:
    # GIVEN a string longer than a log line keeps, whose cut falls inside an address
    text = "x " * ((logs.LONGEST - 10) // 2) + tail + " and the rest"
    # WHEN it is scrubbed
    line = logs.scrub(text)
    # THEN it is cut, the cut says how much is left out, and no part of the address remains
    assert len(line) < logs.LONGEST + 60
    assert line.endswith(f"... ({len(text) - len(line.rsplit('... (', 1)[0])} more characters)")
    assert "ana" not in line and "secret" not in line


def test_scrubbing_reads_each_character_a_bounded_number_of_times() -> None:
    # GIVEN runs of address characters with no address in them, a million characters long,
    # the shapes that made the old pattern read every run again from each position in it
    probe = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        from leadscore.logs import EMAIL
        n = 1_000_000
        for text in ("a" * n + "@b", "a." * (n // 2) + "@b", "a%40" * (n // 4),
                     "%25" * (n // 3) + "40", "@a" * (n // 2), "a@b." * (n // 4)):
            EMAIL.sub(lambda m: "x", text)
        print("done")
    """)
    # WHEN the pattern itself (without the cut at LONGEST) scrubs them, with a CPU limit a
    # thousand times what a linear reading needs (the quadratic one needed days)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, check=False)
    # THEN it finishes: the limit kills a quadratic reading, with SIGXCPU
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-500:]


@pytest.mark.parametrize("path", ["/mandrill", "/mailgun",
                                  f"/mailchimp?key={SECRETS['mailchimp']}"])
def test_a_body_that_is_not_a_form_is_refused_without_repeating_it(
        app_container: Container, capsys: pytest.CaptureFixture[str], path: str) -> None:
    # GIVEN a stranger's form post of one long field with no "=", ending like an address
    body = b"secretsecret" * 5000 + b"@example.com"
    client: Any = client_for("email_webhook")
    # WHEN it reaches a provider whose webhooks post forms
    answer = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    # THEN the answer is a 400 naming the problem, without the body
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["message"] == "body is not form-encoded: a field without '='"
    # AND no log line repeats it, and nothing was written
    logged = capsys.readouterr().out
    assert "secretsecret" not in logged and "example.com" not in logged
    assert all(json.loads(line)["severity"] for line in logged.splitlines() if line)
    assert app_container.store.list_leads() == []


def test_a_form_with_too_many_fields_is_refused(app_container: Container) -> None:
    # GIVEN a form post of 5,000 fields (Mandrill posts one, Mailchimp about sixty)
    body = "&".join(f"f{i}=v" for i in range(5000)).encode()
    # WHEN it reaches Mandrill's webhook
    answer = client_for("email_webhook").post(
        "/mandrill", data=body, content_type="application/x-www-form-urlencoded")
    # THEN it is refused as a bad form, naming the bound
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "body is not form-encoded: more than 1000 fields"
