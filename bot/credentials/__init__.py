"""Credentials: secrets stored encrypted, bound to the hosts they may be sent to."""
