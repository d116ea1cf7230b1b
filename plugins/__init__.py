"""Built-in non-strategy plugins: cost models, HE backends, models, datasets."""
