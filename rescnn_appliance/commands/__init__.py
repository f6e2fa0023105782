"""Subcommands of ``rescnn-appliance``: one module each, discovered by :mod:`rescnn_appliance.cli`.

A module here (names starting with "_" are skipped) defines ``add_parser(subparsers)``; it registers one subparser and calls
``set_defaults(func=handler)`` where ``handler(args, settings) -> int``. It may also set
``settings_overrides=fn(args) -> dict`` to turn its own flags into dotted settings.
Heavy imports (torch, vlc, training code) happen inside the handler, not at module import.
"""
