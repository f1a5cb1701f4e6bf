"""Training the reader's own networks — the piece checker and the pair reader — on pages written
with MNIST training digits. The reader (``digitnet.reading``) never imports this package: it
loads the trained models that ship in ``digitnet/models/reading``."""
