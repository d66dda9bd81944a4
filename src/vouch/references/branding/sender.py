"""The sender of the emails to a company's candidates and referees: "<Company> via
Vouch" <the installation's address>.

The company's name is typed by its members, so it is made one line first (CR, LF and
other controls become spaces: ``core.text.one_line``), then the header is built by
``email.headerregistry.Address``, which quotes what needs quoting (an apostrophe, a
comma, "Smith & Jones") and leaves non-ASCII names (accents, CJK) for the mail
library to encode as RFC 2047 words. No name can add a header or a recipient."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from vouch.core.text import one_line

# A display name longer than this is cut: mail readers show about this much.
MAX_NAME = 80


def sender(company_name: str, default_from: str) -> str:
    """The From header's value for mail sent on behalf of ``company_name``, with the
    address (and the "Vouch" part of the name) of ``default_from``."""
    own_name, address = parseaddr(default_from)
    via = one_line(own_name) or "Vouch"
    company = one_line(company_name or "")[:MAX_NAME].strip()
    display = f"{company} via {via}" if company else via
    username, _, domain = address.rpartition("@")
    return str(Address(display_name=display, username=username, domain=domain))
