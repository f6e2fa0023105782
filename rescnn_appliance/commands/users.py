"""``rescnn-appliance users``: the household's listeners, each with their own history.

Examples::

    rescnn-appliance users add ana
    rescnn-appliance users list          # the active one is marked with *
    rescnn-appliance users select ana    # the appliance plays for ana (resumes after reboot)
    rescnn-appliance users remove ana    # deletes ana's likes, skips and plays too
"""

from __future__ import annotations

import argparse

ACTIVE_USER_KEY = "active_user"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("users", help="add, list, remove or select listeners",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="users_command", metavar="ACTION")
    sub.required = True
    for name, text in (("add", "add a listener"), ("remove", "remove a listener and their history"),
                       ("select", "make a listener the active one")):
        sub.add_parser(name, help=text).add_argument("name")
    sub.add_parser("list", help="list listeners; * marks the active one")
    p.set_defaults(func=handle)


def handle(args, settings) -> int:
    from rescnn_appliance.commands._library_session import with_library
    from rescnn_appliance.music.library import UnknownUser

    return with_library(settings.database_path, lambda lib: _act(args, lib), (ValueError, UnknownUser))


def _act(args, lib) -> int:
    """One users action on the open library."""
    cmd = args.users_command
    if cmd == "add":
        lib.add_user(args.name)
        if lib.get_state(ACTIVE_USER_KEY) is None:
            lib.set_state(ACTIVE_USER_KEY, args.name.strip())
        print(f"added {args.name.strip()}")
    elif cmd == "list":
        active = lib.get_state(ACTIVE_USER_KEY)
        for name in lib.users():
            print(f"{'*' if name == active else ' '} {name}")
    elif cmd == "remove":
        lib.remove_user(args.name)
        print(f"removed {args.name} and their history")
    elif cmd == "select":
        lib.user_id(args.name)
        lib.set_state(ACTIVE_USER_KEY, args.name)
        print(f"active user: {args.name}")
    return 0
