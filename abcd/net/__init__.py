"""Peer transport: the wire codec, the websocket transport and fault injection."""
from .codec import (
    DEFAULT_MAX_FRAME_BYTES,
    EncodeCache,
    FrameError,
    Hello,
    decode_frame,
    decode_hello,
    encode_frame,
    encode_hello,
    parse_address,
)
from .faults import Faults, faults_inbound, faults_outbound
from .transport import (
    CLOSE_BAD_FRAME,
    CLOSE_BAD_HELLO,
    CLOSE_BAD_TOKEN,
    CLOSE_REMOVED,
    CLOSE_WRONG_CLUSTER,
    RAFT_PATH,
    Backoff,
    PeerTransport,
)

__all__ = [
    "CLOSE_BAD_FRAME",
    "CLOSE_BAD_HELLO",
    "CLOSE_BAD_TOKEN",
    "CLOSE_REMOVED",
    "CLOSE_WRONG_CLUSTER",
    "DEFAULT_MAX_FRAME_BYTES",
    "RAFT_PATH",
    "Backoff",
    "EncodeCache",
    "Faults",
    "FrameError",
    "Hello",
    "PeerTransport",
    "decode_frame",
    "decode_hello",
    "encode_frame",
    "encode_hello",
    "faults_inbound",
    "faults_outbound",
    "parse_address",
]
