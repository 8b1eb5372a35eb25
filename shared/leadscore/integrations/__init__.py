"""Handover integrations: each outside system one module behind one small port (ports.py).

Nothing here is imported by the functions until the composition root asks for it, and
importing a module builds no client and opens no connection (cold starts matter).
"""
