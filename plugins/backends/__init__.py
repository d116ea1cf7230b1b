"""Built-in HE backends."""
