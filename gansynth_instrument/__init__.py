"""gansynth-instrument: a real-time, MIDI-playable instrument built on GANSynth.

Entry points (more arrive as the package grows):

    load_model(path) -> Model          an exported ONNX instrument model; Model.generate(z, pitches)
    ModelInfo                          the metadata every model carries
    GansynthError                      base of every error a user can cause
"""

from gansynth_instrument.errors import GansynthError
from gansynth_instrument.metadata import ModelInfo

__version__ = "0.1.0"
__all__ = ["GansynthError", "ModelInfo", "__version__"]
