"""Fusion engines: one module each, one interface (``base.FusionEngine``)."""
