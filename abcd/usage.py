"""The usage error of abcd's command-line programs (`abcd`, `abcdctl`): wrong input on
the command line or stdin, which the program reports in one line and exits 2 for."""


class UsageError(Exception):
    """Wrong input on the command line or stdin: exit 2."""
