"""abcdctl's --user: where the password comes from, and what happens when there is none."""
import io

import pytest

from abcd import cli, cli_auth


def test_a_password_after_the_colon_is_taken_as_is(monkeypatch):
    monkeypatch.delenv(cli_auth.PASSWORD_ENV, raising=False)
    assert cli_auth.credentials("alice:s3cret:with:colons") == ("alice", "s3cret:with:colons")
    assert cli_auth.credentials(None) is None


def test_the_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(cli_auth.PASSWORD_ENV, "from-env")
    assert cli_auth.credentials("alice") == ("alice", "from-env")


def test_the_password_is_prompted_without_echo_on_a_terminal(monkeypatch):
    monkeypatch.delenv(cli_auth.PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    prompts = []
    monkeypatch.setattr(cli_auth.getpass, "getpass", lambda text: prompts.append(text) or "typed")
    assert cli_auth.credentials("alice") == ("alice", "typed")
    assert prompts == ["password for alice: "]


def test_no_terminal_and_no_variable_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv(cli_auth.PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["--endpoints", "127.0.0.1:1", "--user", "alice", "get", "k"]) == 2
    assert "set $ABCD_PASSWORD or run from a terminal" in capsys.readouterr().err


def test_a_new_password_from_stdin_must_not_be_empty(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    args = cli.build_parser().parse_args(["user", "add", "bob", "--password-stdin"])
    with pytest.raises(cli_auth.CredentialsError, match="empty"):
        cli_auth._new_password(args)
    monkeypatch.setattr("sys.stdin", io.StringIO("pw with spaces\n"))
    assert cli_auth._new_password(args) == "pw with spaces"


def test_the_auth_commands_parse():
    parser = cli.build_parser()
    a = parser.parse_args(["role", "grant-permission", "app", "readwrite", "app/", "--prefix"])
    assert (a.command, a.role_command, a.name, a.perm, a.key, a.prefix) == (
        "role", "grant-permission", "app", "readwrite", "app/", True)
    a = parser.parse_args(["role", "revoke-permission", "app", "a", "b"])
    assert (a.key, a.range_end) == ("a", "b")
    with pytest.raises(SystemExit):
        parser.parse_args(["role", "grant-permission", "app", "all", "k"])
    assert parser.parse_args(["auth", "status"]).auth_command == "status"
