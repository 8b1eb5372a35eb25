"""The `track` function's parts: Segment's wire format, write keys and CORS, and the mapping
of Segment messages to our canonical events (see functions/track.py)."""
