"""Encrypted deployment: the HE program compiler, evaluation keys, client and server,
and encrypted evaluation of a whole model."""
