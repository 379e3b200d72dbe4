"""The model: the ONNX runtime (backends, precision), its metadata contract, spectral
post-processing, latents, and the knob qualities measured from it.
"""
