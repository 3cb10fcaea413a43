"""tolk's Python side: the PyTorch Marian model shared by the reference and the trainer, and HF-layout I/O."""
