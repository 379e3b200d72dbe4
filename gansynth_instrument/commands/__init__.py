"""One module per subcommand: each turns parsed arguments into calls of the domain modules and
prints what the user should see. ``cli.py`` builds the parser and calls ``run`` here."""
