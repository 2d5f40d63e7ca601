"""Training: the one loop (plain PyTorch) and, beside it, the Ray Train launcher."""
