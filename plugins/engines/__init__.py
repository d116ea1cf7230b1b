"""Built-in encrypted-inference engines."""
