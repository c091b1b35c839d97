"""`python -m abcd demo`: a local cluster and its dashboard in one command; Ctrl-C stops it.

`supervisor` starts the nodes as child processes and stops, kills and restarts them;
`control_api` serves the dashboard's files and the supervisor's control over HTTP;
`cli` reads the command line and runs both until Ctrl-C or SIGTERM.
"""
from .cli import main

__all__ = ["main"]
