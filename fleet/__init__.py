"""The operator's tools, above the services: the ``fleet`` CLI (cli/) and the local fleet (local/).

They may import the services and ``common``; nothing in ``common`` or the services imports them, and
the images never carry them (their own distribution, fleet/pyproject.toml).
"""
