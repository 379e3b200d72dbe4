"""PyTorch trainer (the optional ``train`` extra): imported by ``gansynth-instrument train``.

Nothing at run time (model, cache, engine, live) imports this package, so torch stays optional;
``export`` imports only ``timbre_presets``, which needs no torch.
"""
