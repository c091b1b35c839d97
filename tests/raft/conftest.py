"""`pytest tests/raft --rewrite` rewrites the expected outputs of the scenario transcripts."""


def pytest_addoption(parser):
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite tests/raft/testdata/*.txt with the actual outputs (then read the diff!)",
    )
