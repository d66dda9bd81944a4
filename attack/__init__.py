"""`make attack`: the attack suite run on every change (docs/security/attack-suite.md).

run.py starts a real server with seeded data and runs the attack tools against it; each
module here is one part of it (seed, headers, scanners, tls, audit, detection)."""
