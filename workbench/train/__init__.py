"""Losses, the training loop, checkpoints."""
