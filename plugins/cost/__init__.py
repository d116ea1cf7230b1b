"""Built-in HE cost models."""
