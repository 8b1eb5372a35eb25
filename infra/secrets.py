"""Secret values for the first deploy: from a file, the environment, or a prompt.

Keys are the environment variable each function reads (`LEADSCORE_STRIPE_SECRET`,
`AWS_ACCESS_KEY_ID`). The file is YAML (`KEY: value`) or dotenv (`KEY=value`, `#` comments,
optional quotes). Values only ever travel to `gcloud secrets versions add` on stdin.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import yaml

# A dotenv line: a variable name, then `=`. Deciding the format by a bare `=` anywhere took a
# YAML file whose values all hold one (base64 padding, `whsec_...=`) for dotenv, and its
# "keys" (the values' text) were then printed as unknown names.
DOTENV_LINE = re.compile(r"^\s*(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretsFileError(Exception):
    pass


# Values we choose ourselves (the others come from each provider). The dashboard is public
# behind its token sign-in by default, and these tokens open the leads API, tracking with
# server rights, lead ids and the Slack links: a short one is a guessable one.
OWN_TOKENS = ("LEADSCORE_API_TOKEN", "LEADSCORE_DASHBOARD_TOKENS", "LEADSCORE_TRACK_SERVER_KEYS",
              "LEADSCORE_SLACK_ACTION_SECRET", "LEADSCORE_HANDOVER_SECRET",
              "LEADSCORE_PURCHASE_SECRET", "LEADSCORE_SES_EVENTBRIDGE_SECRET")
OWN_KEYS = ("LEADSCORE_ID_KEY",)  # one value, commas and all
# `user:password` pairs we choose and paste into the provider: the password is the secret
OWN_PASSWORDS = ("LEADSCORE_POSTMARK_BASIC_AUTH", "LEADSCORE_MAILJET_BASIC_AUTH",
                 "LEADSCORE_SPARKPOST_BASIC_AUTH")
MIN_TOKEN_LENGTH = 24  # secrets.token_urlsafe(18): 144 random bits
SUGGESTION = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _secrets_of(name: str, value: str) -> list[str]:
    """The parts of a setting's value that must each be long enough."""
    if name in OWN_KEYS:
        return [value]
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if name in OWN_PASSWORDS:
        return [part.partition(":")[2] if ":" in part else part for part in parts]
    return parts


def check_strength(values: Mapping[str, str]) -> None:
    """Refuse any secret we choose ourselves (tokens, keys, the password of a Basic pair;
    each of a comma-separated list) shorter than MIN_TOKEN_LENGTH, naming the variable
    only."""
    weak = [name for name in (*OWN_TOKENS, *OWN_KEYS, *OWN_PASSWORDS) if name in values and any(
        len(secret) < MIN_TOKEN_LENGTH for secret in _secrets_of(name, values[name]))]
    if weak:
        raise SecretsFileError(
            f"{', '.join(weak)}: each value must be at least {MIN_TOKEN_LENGTH} characters "
            f"(make one with: {SUGGESTION}); nothing was changed")


def read_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise SecretsFileError(f"{path}: {exc.strerror}") from None
    if all(DOTENV_LINE.match(line) or not line.strip() or line.lstrip().startswith("#")
           for line in text.splitlines()):
        return _dotenv(text)
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SecretsFileError(f"{path}: not YAML or KEY=value lines: {exc}") from None
    if not isinstance(loaded, dict):
        raise SecretsFileError(f"{path}: expected KEY: value pairs")
    return {str(k): str(v) for k, v in loaded.items() if v is not None and str(v) != ""}


def _dotenv(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if value:
            values[key.strip()] = value
    return values


def shown_names(keys: Iterable[str]) -> str:
    """Keys for a message: variable names as they are, anything else (a value pasted where
    a key belongs) only counted, so no message ever shows a secret."""
    keys = list(keys)
    names = [k for k in keys if NAME.match(k)]
    others = len(keys) - len(names)
    return ", ".join(names + ([f"{others} entries that are not variable names"] if others
                              else []))


def gather(names: Iterable[str], file_values: Mapping[str, str],
           environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values found for `names`: the file first, then the environment."""
    environ = os.environ if environ is None else environ
    found = {}
    for name in names:
        value = file_values.get(name) or environ.get(name)
        if value:
            found[name] = value
    return found


def prompt_for(names: Iterable[str],
               ask: Callable[[str], str] = getpass.getpass) -> dict[str, str]:
    """Ask for each value on the terminal (not echoed); an empty answer skips it."""
    if not sys.stdin.isatty():
        return {}
    answers = {}
    for name in names:
        value = ask(f"{name} (empty: skip): ").strip()
        if value:
            answers[name] = value
    return answers
