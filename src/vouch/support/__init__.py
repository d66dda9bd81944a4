"""Need-to-know staff access (docs/security/support-access.md): an operator sees a
company's pages only through a support grant its owner approved, read-only by default,
for a limited time, every page viewed recorded where the owners can see it."""
