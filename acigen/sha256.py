"""SHA-256 for acigen's start-up path, without hashlib's.

`import hashlib` loads OpenSSL's libcrypto and initialises it (~2 ms), and
acigen runs at every manifest edit (issue 19).  CPython's own SHA-256
module gives the same digests; hashlib stands in where it is not built.
"""

from __future__ import annotations

try:
    from _sha256 import sha256  # Python 3.11
except ImportError:
    try:
        from _sha2 import sha256  # type: ignore[no-redef]  # Python 3.12 and later
    except ImportError:
        from hashlib import sha256  # type: ignore[no-redef]

__all__ = ["sha256"]
