"""Learning: the model and dataset catalog types, the training loop, checkpoints, the
model zoo and the trainable polynomial activation."""
