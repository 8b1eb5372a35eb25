"""One module per outside system: verify the raw request, then parse it to canonical events."""
