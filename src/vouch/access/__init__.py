"""How people get into a company: signing up (with a new company or an invitation), Vouch's
allauth adapter, invitations and the members pages. Plain Python, not a Django app: its
templates stay with vouch.accounts. It sits above vouch.guard and vouch.tenancy, whose work
it orchestrates (docs/development/architecture.md, Layers)."""
