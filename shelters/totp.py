"""The optional second factor: TOTP codes (RFC 6238, 30-second steps) and recovery codes.

Enrolment is two steps: ``begin_enrolment`` makes a secret and returns it once, as an
``otpauth://`` URI for an authenticator app; ``confirm_enrolment`` takes a first code from the
app, switches the factor on, and returns ten recovery codes, also shown once and kept only as
Argon2id hashes. A code is accepted for its own step and one step either side (clock drift),
and only for a step later than the last one accepted, so a code seen over a shoulder cannot be
replayed. A recovery code works once.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shelters.errors import Conflict, InvalidInput
from shelters.identity import hash_secret, verify_password
from shelters.models import RecoveryCode, TotpFactor, User, utcnow

ISSUER = "Refuge"
RECOVERY_CODES = 10
DRIFT_STEPS = 1
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def begin_enrolment(session: Session, user: User) -> str:
    """A new secret for ``user``'s factor, as an otpauth URI; replaces an unconfirmed one.

    ``Conflict`` if the user already has a confirmed factor (reset it first).
    """
    factor = session.get(TotpFactor, user.id, with_for_update=True)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("a second factor is already set up for this account")
    secret = pyotp.random_base32()
    if factor is None:
        session.add(TotpFactor(user_id=user.id, secret=secret))
    else:
        factor.secret, factor.created_at, factor.last_step = secret, utcnow(), None
    session.flush()
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def confirm_enrolment(
    session: Session, user_id: int, code: str, *, now: datetime | None = None
) -> list[str]:
    """Switch the factor on with a first valid code; return the recovery codes (shown once).

    ``InvalidInput`` without an enrolment begun or for a wrong code; ``Conflict`` if the
    factor is on already.
    """
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is None:
        raise InvalidInput("begin the enrolment first")
    if factor.confirmed_at is not None:
        raise Conflict("a second factor is already set up for this account")
    if not _accept_code(factor, code, now or utcnow()):
        raise InvalidInput("the code does not match; check the app's clock and try again")
    factor.confirmed_at = now or utcnow()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=hash_secret(c)) for c in codes)
    session.flush()
    return codes


def has_factor(session: Session, user_id: int) -> bool:
    """Whether the user has a confirmed second factor."""
    confirmed = session.scalar(select(TotpFactor.confirmed_at).where(TotpFactor.user_id == user_id))
    return confirmed is not None


def check(session: Session, user_id: int, code: str | None, *, now: datetime | None = None) -> bool:
    """Whether ``code`` is a valid, unused TOTP code or recovery code of the user's factor.

    False without a confirmed factor. A TOTP code is six digits; anything else is tried as a
    recovery code, which is then used up. Writes what it used (in the caller's transaction).
    """
    if not code:
        return False
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is None or factor.confirmed_at is None:
        return False
    code = code.strip().replace(" ", "")
    if code.isdigit() and len(code) == 6:
        accepted = _accept_code(factor, code, now or utcnow())
        session.flush()
        return accepted
    return _use_recovery_code(session, user_id, code.lower(), now or utcnow())


def reset(session: Session, user_id: int) -> bool:
    """Remove a user's factor and recovery codes (lost device); whether there was one."""
    factor = session.get(TotpFactor, user_id)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    if factor is None:
        return False
    session.delete(factor)
    session.flush()
    return True


def _accept_code(factor: TotpFactor, code: str, now: datetime) -> bool:
    """Accept a code of a step near ``now`` and later than the last accepted; remember it."""
    totp = pyotp.TOTP(factor.secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if factor.last_step is not None and step <= factor.last_step:
                return False  # replayed, or older than a code already used
            factor.last_step = step
            return True
    return False


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _use_recovery_code(session: Session, user_id: int, code: str, now: datetime) -> bool:
    unused = session.scalars(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        .with_for_update()
    )
    for stored in unused:
        if verify_password(code, stored.code_hash):
            stored.used_at = now
            session.flush()
            return True
    return False
