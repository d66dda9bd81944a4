"""Intrusion detection and request limits (docs/security/intrusion-detection.md,
docs/security/limits.md): hostile requests recognised, scored by source, and their
sources blocked for an escalating time; rate limits per address, network, account,
company and route class."""
