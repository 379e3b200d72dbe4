"""Control surfaces: the browser page (``ui/``) and its server, OSC, the computer keyboard."""
