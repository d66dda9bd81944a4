"""Vouch's core: helpers every layer may use; it imports no other Vouch package except vouch.config."""
