"""People who sign in to the web pages: name, role, password hash (werkzeug scrypt), disabled flag, lockout."""

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from .storage import engine_of

ROLES = ("clinician", "pharmacist", "auditor", "admin")
REVIEWER_ROLES = ("auditor", "admin")
MAX_FAILURES = 5  # consecutive failed sign-ins before the account is locked for a while
LOCK_MINUTES = 15


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the name is unknown, so a wrong name costs as much as a wrong password (made on
    first use: an scrypt hash at import cost every worker 0.2 s of start-up)."""
    return generate_password_hash("no such user, no such password")


class UserError(Exception):
    """A user cannot be created or changed as asked (bad name, role, duplicate)."""


@dataclass(frozen=True)
class User:
    """A signed-in person, as Flask-Login wants it."""

    name: str
    role: str
    disabled: bool = False

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return not self.disabled

    def get_id(self) -> str:
        return self.name

    @property
    def can_review(self) -> bool:
        return self.role in REVIEWER_ROLES


def _now() -> datetime:
    return datetime.now(UTC)


def create(db, name: str, role: str, password: str) -> User:
    """Add a user (scrypt hash); refuses an unknown role, an empty or taken name, a short password."""
    name = (name or "").strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise UserError("name: 1-64 characters, no spaces")
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}")
    if len(password or "") < 10:
        raise UserError("password: at least 10 characters")
    if get(db, name) is not None:
        raise UserError(f"user {name} exists")
    try:
        db.execute("INSERT INTO users (name, role, password_hash, disabled, created_at, failed_signins) "
                   "VALUES (?, ?, ?, 0, ?, 0)", [name, role, generate_password_hash(password), _now().isoformat()])
    except Exception as err:
        if engine_of(db).is_unique_violation(err, "users"):  # created by someone else since the check above
            raise UserError(f"user {name} exists") from err
        raise
    return User(name, role)


def get(db, name: str) -> User | None:
    row = db.execute("SELECT name, role, disabled FROM users WHERE name = ?", [name]).fetchone()
    return User(row[0], row[1], bool(row[2])) if row else None


def list_users(db) -> list[dict]:
    return list(db.query("SELECT name, role, disabled, created_at, failed_signins, locked_until FROM users "
                         "ORDER BY name"))


def disable(db, name: str) -> None:
    if get(db, name) is None:
        raise UserError(f"no user {name}")
    db.execute("UPDATE users SET disabled = 1 WHERE name = ?", [name])


def authenticate(db, name: str, password: str) -> tuple[User | None, str]:
    """(user, "") on success, else (None, reason); failures count toward a temporary lock."""
    row = db.execute("SELECT name, role, disabled, password_hash, failed_signins, locked_until FROM users "
                     "WHERE name = ?", [name]).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password or "")
        return None, "Wrong name or password."
    locked_until = datetime.fromisoformat(row[5]) if row[5] else None
    if locked_until and locked_until > _now():
        return None, "Too many failed sign-ins: this account is locked for a while. Try later or ask an admin."
    if not check_password_hash(row[3], password or ""):
        failures = row[4] + 1
        lock = (_now() + timedelta(minutes=LOCK_MINUTES)).isoformat() if failures >= MAX_FAILURES else None
        db.execute("UPDATE users SET failed_signins = ?, locked_until = ? WHERE name = ?",
                   [0 if lock else failures, lock, name])
        if lock:
            return None, "Too many failed sign-ins: this account is locked for a while. Try later or ask an admin."
        return None, "Wrong name or password."
    if row[2]:
        return None, "This account is disabled."
    db.execute("UPDATE users SET failed_signins = 0, locked_until = NULL WHERE name = ?", [name])
    return User(row[0], row[1]), ""
