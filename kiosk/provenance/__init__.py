"""Verifying the provenance mark: ``POST /provenance/verify`` and ``manage.py
provenance_verify``. The mark itself is ``media_engine/provenance``."""
