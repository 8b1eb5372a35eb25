"""Scores back in the email tools (issue 22): one `EspSync` module per tool."""
