"""Key rotation, online and resumable (``vouch keys ...``, see ``vouch.cli.keys``).

- :func:`rotate_master`: a new master key version re-wraps every company's keys
  (``DataKey`` rows, control database); old versions retire once no row needs them.
- :func:`rotate_company`: a new data key version for one company; its encrypted
  values and files are re-encrypted while it keeps working, then the old version is
  destroyed.
- :func:`status`, :func:`company_summary`, :func:`company_keys`: versions in use and
  key ages.

Both rotations can be stopped at any moment and are finished by running them again.
"""

from vouch.vault.rotation.company import encrypted_models, rotate_company
from vouch.vault.rotation.master import rotate_master
from vouch.vault.rotation.progress import Progress
from vouch.vault.rotation.status import company_keys, company_summary, status

__all__ = [
    "Progress",
    "company_keys",
    "company_summary",
    "encrypted_models",
    "rotate_company",
    "rotate_master",
    "status",
]
