"""The web console: ``transact console`` or config ``console_port`` (see ``server.py``)."""
