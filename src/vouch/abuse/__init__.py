"""Abuse monitoring (docs/security/abuse.md): rules over unusual use of a company's
account (bulk exports, mass invitations, downloads far above normal), with a response:
throttle, flag to the owners, require re-authentication, or suspend."""
