"""TLS for clients and peers (docs/security.md): settings, contexts, the listener, peer checks."""
from .contexts import TlsContexts
from .settings import TlsSettings

__all__ = ["TlsContexts", "TlsSettings"]
