"""Reading people's digits and numbers: the recogniser (a model and its calibration), the piece
checker and the pair reader, and the lattice that reads a number from the pieces ``vision``
cuts. What runs when reading lives here; training those networks, in ``reading.training``.
"""

from digitnet.reading.lattice import Reading, read_number, read_segments, read_with
from digitnet.reading.recognizer import Prediction, Recognizer, recognize

__all__ = ["Prediction", "Reading", "Recognizer", "read_number", "read_segments", "read_with",
           "recognize"]  # fmt: skip
