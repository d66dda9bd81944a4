"""Argon2id with Vouch's parameters (P11, docs/security/promises.md#p11).

OWASP's floor is m=19 MiB, t=2, p=1. Vouch uses m=32 MiB, t=2, p=1: about 1.7 times
the floor in memory (the cost that hurts GPU/ASIC guessing most) and equal in passes.
Measured with ``make bench`` on the reference 2-core server: m=64 MiB, t=2 took a median
129 ms per check (over 180 ms while the machine was busy), more than the 50-100 ms a
sign-in should cost; m=32 MiB, t=2 took 0.54 of its time side by side (so ~70 ms). Memory
is also what a burst of concurrent sign-ins holds at once: 32 MiB per hash, times the
worker threads. p=1 because the app runs one worker per core: more lanes would only
contend. Logins are throttled before any hash is computed, so this cost is not a DoS
lever. Hashes stored with other parameters are upgraded at the next sign-in
(Django's ``must_update``).
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class VouchArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"  # same identifier: existing Django argon2 hashes keep working
    time_cost = 2
    memory_cost = 32768  # KiB (32 MiB)
    parallelism = 1
