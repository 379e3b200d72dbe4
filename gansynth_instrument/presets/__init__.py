"""Presets and banks (value objects, YAML files, shipped and user folders) and the timbre
controls they carry: knobs, pad, MPE settings, knob directions (GANSpace), the timbre space.
"""
