"""``vouch tenants``: operating every company database at once.

- :mod:`.probe` looks at a company's database without Django (fast, read-only,
  safe on a broken database): exists, opens, identity, applied migrations, size.
- :mod:`.migrate` brings company databases to the current schema in a process pool.
- :mod:`.report` lists, shows and checks companies, and finds orphans.
- :mod:`.commands` prints all of that for the command line.
"""
