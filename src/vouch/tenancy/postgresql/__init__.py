"""Vouch's PostgreSQL backend for company connections (``ENGINE = "vouch.tenancy.postgresql"``); see ``base``."""
