"""The argument parsers of the subcommands, one module per group of flows, and the options they
share (``options.py``, each defined once). ``cli.build_parser`` adds them all. They live apart
from ``commands/`` because those import the domain modules: building the parser (``--help``, the
docs' CLI reference) must import nothing heavy, and a command's module is imported only when it
runs.
"""
