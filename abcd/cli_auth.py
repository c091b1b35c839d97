"""`abcdctl user ...`, `role ...`, `auth ...` and the `--user` flag (docs/client.md).

Passwords are never taken from the command line, where `ps` and the shell's history
would show them: `--user NAME` prompts (without echo) unless `$ABCD_PASSWORD` is set,
and `user add` / `user passwd` prompt too, or read one line from stdin with
`--password-stdin`.  `--user NAME:PASSWORD` is accepted for throwaway test clusters.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from .client import Client

PASSWORD_ENV = "ABCD_PASSWORD"


class CredentialsError(ValueError):
    """No password could be had (no terminal to prompt on, nothing in the environment)."""


def add_user_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user", metavar="NAME[:PASSWORD]",
        help=f"act as this user when the cluster has auth on (password from ${PASSWORD_ENV}, else prompted)",
    )


def credentials(user: str | None) -> tuple[str, str] | None:
    """(name, password) for `--user`, or None without it."""
    if user is None:
        return None
    name, sep, password = user.partition(":")
    if not name:
        raise CredentialsError("--user needs a user name")
    if not sep:
        password = os.environ.get(PASSWORD_ENV) or _prompt(f"password for {name}: ")
    return name, password


def _prompt(text: str) -> str:
    if not sys.stdin.isatty():
        raise CredentialsError(f"no password: set ${PASSWORD_ENV} or run from a terminal to be prompted")
    return getpass.getpass(text)


def _new_password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CredentialsError("--password-stdin read an empty line")
        return line
    first = _prompt(f"new password for {args.name}: ")
    if _prompt("again: ") != first:
        raise CredentialsError("the two passwords differ")
    return first


def add_parsers(sub) -> None:
    user = sub.add_parser("user", help="add, delete, list users; passwords; roles").add_subparsers(
        dest="user_command", metavar="add|delete|passwd|grant-role|revoke-role|list", required=True)
    for name in ("add", "passwd"):
        c = user.add_parser(name)
        c.add_argument("name")
        c.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    user.add_parser("delete").add_argument("name")
    for name in ("grant-role", "revoke-role"):
        c = user.add_parser(name)
        c.add_argument("name"), c.add_argument("role")
    user.add_parser("list")

    role = sub.add_parser("role", help="add, delete, list roles; their permissions").add_subparsers(
        dest="role_command", metavar="add|delete|grant-permission|revoke-permission|list", required=True)
    role.add_parser("add").add_argument("name")
    role.add_parser("delete").add_argument("name")
    c = role.add_parser("grant-permission", help="ROLE read|write|readwrite KEY [RANGE_END]")
    c.add_argument("name"), c.add_argument("perm", choices=("read", "write", "readwrite"))
    c.add_argument("key"), c.add_argument("range_end", nargs="?", help="the end of the range, excluded")
    c.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    c = role.add_parser("revoke-permission", help="ROLE KEY [RANGE_END]")
    c.add_argument("name"), c.add_argument("key"), c.add_argument("range_end", nargs="?")
    c.add_argument("--prefix", action="store_true", help="the permission was granted with --prefix")
    role.add_parser("list")

    auth = sub.add_parser("auth", help="turn auth on or off, or show whether it is").add_subparsers(
        dest="auth_command", metavar="enable|disable|status", required=True)
    for name in ("enable", "disable", "status"):
        auth.add_parser(name)


async def user_command(c: Client, a, pr, _b) -> int:
    command = a.user_command
    if command == "add":
        answer = await c.user_add(a.name, _new_password(a))
        human = f"user {a.name} added" + (" (with role root)" if a.name == "root" else "")
    elif command == "passwd":
        answer = await c.user_passwd(a.name, _new_password(a))
        human = f"password of {a.name} changed (its tokens no longer work)"
    elif command == "delete":
        answer = await c.user_delete(a.name)
        human = f"user {a.name} deleted"
    elif command == "grant-role":
        answer = await c.user_grant_role(a.name, a.role)
        human = f"role {a.role} granted to {a.name}"
    elif command == "revoke-role":
        answer = await c.user_revoke_role(a.name, a.role)
        human = f"role {a.role} revoked from {a.name}"
    else:
        answer = await c.user_list()
        human = "\n".join(f"{u['name']}  {', '.join(u['roles']) or '-'}" for u in answer.get("users", []))
    pr.out(answer, human)
    return 0


async def role_command(c: Client, a, pr, _b) -> int:
    command = a.role_command
    if command == "add":
        answer = await c.role_add(a.name)
        human = f"role {a.name} added"
    elif command == "delete":
        answer = await c.role_delete(a.name)
        human = f"role {a.name} deleted"
    elif command == "grant-permission":
        answer = await c.role_grant_permission(a.name, a.key, a.perm, range_end=a.range_end, prefix=a.prefix)
        human = f"role {a.name} may now {a.perm} {_what(a)}"
    elif command == "revoke-permission":
        answer = await c.role_revoke_permission(a.name, a.key, range_end=a.range_end, prefix=a.prefix)
        human = f"role {a.name} no longer has its permission on {_what(a)}"
    else:
        answer = await c.role_list()
        lines = []
        for role in answer.get("roles", []):
            perms = role.get("permissions")
            if perms == "all":
                lines.append(f"{role['name']}  every permission")
                continue
            lines.append(f"{role['name']}" + ("" if perms else "  (no permissions)"))
            for p in perms:
                lines.append(f"  {p['perm']:<9} {_range_text(p['key'], p['range_end'])}")
        human = "\n".join(lines)
    pr.out(answer, human)
    return 0


async def auth_command(c: Client, a, pr, _b) -> int:
    if a.auth_command == "enable":
        answer = await c.auth_enable()
        human = "auth enabled: every call now needs a user (abcdctl --user NAME ...)"
    elif a.auth_command == "disable":
        answer = await c.auth_disable()
        human = "auth disabled: every call is allowed without a user"
    else:
        answer = await c.auth_status()
        human = f"auth {'enabled' if answer.get('enabled') else 'disabled'} (auth revision {answer.get('revision')})"
    pr.out(answer, human)
    return 0


def _what(a) -> str:
    if a.prefix:
        return f"every key starting with {a.key!r}"
    return _range_text(a.key, a.range_end or "")


def _range_text(key: str, range_end: str) -> str:
    if range_end == "":
        return f"key {key!r}"
    if range_end == "\0":
        return f"every key from {key!r} on"
    return f"keys [{key!r}, {range_end!r})"


COMMANDS = {"user": user_command, "role": role_command, "auth": auth_command}
