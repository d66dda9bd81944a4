"""Vouch's SQLite database backend (``ENGINE = "vouch.tenancy.sqlite"``); see ``base``."""
