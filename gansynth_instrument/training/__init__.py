"""PyTorch trainer (the optional ``train`` extra): imported only by ``gansynth-instrument train``.

Nothing at run time (model, cache, engine, live) imports this package, so torch stays optional.
"""
