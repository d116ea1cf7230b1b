"""Built-in pruning strategies; every module here is an Artemis plugin."""
