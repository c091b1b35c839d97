"""Retries and failover: a call is attempted on one endpoint after another, backing off,
until an answer other than 503/504 or the call's timeout (docs/client.md, "How
requests travel"), and then says whether a write's outcome is known."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..backoff import Backoff
from .endpoints import Endpoints
from .errors import Timeout, Unavailable, Unreachable, error_for, outcome
from .tokens import Tokens

BACKOFF_INITIAL = 0.025
BACKOFF_MAX = 1.0
MAX_RENEWALS = 5  # authentications per call before a 401 is final


class Attempt:
    """One attempt of a call: `sent` turns True just before its request may leave, so a
    deadline that passes earlier (while connecting) is known to have sent nothing."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


# attempt(base, progress) -> (status, body, retry_after seconds or None)
AttemptFn = Callable[[str, Attempt], Awaitable[tuple]]


async def retrying(
    attempt: AttemptFn, *, write: bool, what: str, timeout: float, endpoints: Endpoints, tokens: Tokens
):
    """Run `attempt(base, progress)` until an answer other than 503/504, failing over
    and backing off; the answer's body.  An attempt sets `progress.sent` before its
    request may leave: a deadline passing before that (while connecting) sent nothing,
    so a write is then known not to be applied, as when every attempt was refused."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    maybe_applied = False  # some attempt of this write may have been applied
    backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
    attempts = 0
    last = ""
    last_was_timeout = False
    # Authentications left before a 401 is final: one for a token that expired or was
    # voided, a few more while members disagree on whether auth is on (one that has
    # not applied `auth enable` yet answers authenticate with auth_not_enabled).
    renewals = MAX_RENEWALS
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            kind = Timeout if last_was_timeout else Unavailable
            raise kind(
                f"{what}: cluster unavailable after {attempts} attempt(s) in {timeout:g}s "
                f"(last: {last}){outcome(write, maybe_applied)}",
                outcome_unknown=maybe_applied,
            )
        base = endpoints.preferred
        attempts += 1
        this = Attempt()
        token_used = tokens.token
        try:
            async with asyncio.timeout(remaining):
                status, body, retry_after = await attempt(base, this)
        except TimeoutError:
            if not this.sent:  # still connecting: this attempt sent nothing
                kind = Timeout if last_was_timeout else Unavailable
                raise kind(
                    f"{what}: cluster unavailable after {attempts} attempt(s) in {timeout:g}s "
                    f"(last: {last + '; then ' if last else ''}connecting to {base} took the rest of the time)"
                    f"{outcome(write, maybe_applied)}",
                    outcome_unknown=maybe_applied,
                ) from None
            raise Timeout(
                f"{what}: no answer from {base} within {timeout:g}s{outcome(write, write)}",
                outcome_unknown=write,
            ) from None
        except Unreachable as e:
            maybe_applied |= write and e.maybe_sent
            last, last_was_timeout, retry_after = e.reason, False, None
        else:
            if status < 300:
                return body
            if status == 401 and tokens.credentials is not None and renewals > 0:
                # No token yet, or it expired or was voided: authenticate again.
                renewals -= 1
                try:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                        await tokens.renew(base, token_used)
                except TimeoutError:
                    last = f"authenticating at {base} took the rest of the time"
                    continue  # the deadline has passed: the loop raises
                except Unreachable as e:
                    last, renewals = e.reason, renewals + 1
                    endpoints.rotate(base)
                    continue
                if tokens.token is None:  # that member has not applied `auth enable` yet
                    last = f"{base} answered 401 but says auth is not enabled"
                    await asyncio.sleep(min(backoff.pause(None, 1), max(deadline - loop.time(), 0)))
                continue
            if status not in (503, 504):
                if write and attempts > 1 and body.get("code") == "duplicate_stale":
                    raise Unavailable(
                        f"{what}: {body.get('error')}{outcome(True, True)}",
                        outcome_unknown=True, status=status, code="duplicate_stale", body=body,
                    )
                raise error_for(status, body)
            # 503: refused, not applied.  504: proposed but not committed in time.
            maybe_applied |= write and status == 504
            last = f"{base} answered {status}: {body.get('error', '')}"
            last_was_timeout = status == 504
        endpoints.rotate(base)
        pause = backoff.pause(retry_after, len(endpoints))
        await asyncio.sleep(max(0.0, min(pause, deadline - loop.time())))
