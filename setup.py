"""The compiled mixer core (gansynth_instrument/live/_mixcore.c). Optional: where no C compiler or
Python headers are found, the package installs without it and plays on the NumPy mixer
(``compiled_mixer.make_mixer`` says so). The rest of the metadata is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gansynth_instrument.live._mixcore",
            ["gansynth_instrument/live/_mixcore.c"],
            optional=True,
            # No -ffast-math and no fused multiply-add: the samples must match mixer.py's.
            extra_compile_args=["-O2", "-ffp-contract=off"],
        )
    ]
)
