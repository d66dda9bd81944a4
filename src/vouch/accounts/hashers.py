"""Argon2id with Vouch's parameters (P11).

OWASP's floor is m=19 MiB, t=2, p=1. Vouch uses m=64 MiB, t=2, p=1: above the floor
in memory (the cost that hurts GPU/ASIC guessing most) and equal in passes, while one
check stays well under 100 ms on a small 2-core server (``make bench`` measures it).
p=1 because the app runs one worker per core: more lanes would only contend.
Logins are throttled before any hash is computed, so this cost is not a DoS lever.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class VouchArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"  # same identifier: existing Django argon2 hashes keep working
    time_cost = 2
    memory_cost = 65536  # KiB
    parallelism = 1
