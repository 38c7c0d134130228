"""The pages people use: sign-in (session + CSRF), the clinician's check form and results, the review pages."""

import secrets

from flask import request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from .. import users
from ..db import get_db

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = "Sign in to continue."


# Paths whose every call is authenticated on its own (API key, CDS Hooks JWT) or needs no one: no cookie session.
SESSIONLESS_PREFIXES = ("/api/", "/cds-services", "/healthz", "/readyz")


class PageSessions(SecureCookieSessionInterface):
    """Signed cookie sessions for the pages; the API and probes get Flask's null session (never read or written),
    which spares each check the cookie signer Flask builds per request."""

    def open_session(self, app, request):
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


class ConfigurationError(SystemExit):
    """Start-up refused: a setting the web pages need is missing."""


@login_manager.user_loader
def _load_user(name: str):
    user = users.get(get_db(), name)
    return user if user and user.is_active else None


def configure_secret(app) -> None:
    """SAFETYCHECK_SECRET_KEY signs sessions and CSRF tokens; outside dev/test mode start-up refuses without it."""
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("TESTING") or str(app.config.get("DEV", "")).lower() in ("1", "true"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)  # sessions do not survive a restart: fine for trials
        return
    raise ConfigurationError(
        "safetycheck: SAFETYCHECK_SECRET_KEY is not set. It signs sign-in sessions and CSRF tokens.\n"
        "  Set it to a long random value kept secret, e.g.\n"
        "  export SAFETYCHECK_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')\n"
        "  (`make run` creates one under instance/; SAFETYCHECK_DEV=1 uses a throw-away key for local trials).")


def init_app(app) -> None:
    """Sessions, CSRF, sign-in, the web and review blueprints, and `flask user ...`."""
    configure_secret(app)
    app.session_interface = PageSessions()
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # CSRF is checked by the session-authenticated blueprints only; the API and CDS Hooks use keys/JWTs.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    csrf.init_app(app)
    login_manager.init_app(app)

    @app.after_request
    def _secure_cookie_over_https(response):
        """Mark the session cookie Secure whenever the page was served over HTTPS."""
        if request.is_secure:
            cookies = response.headers.getlist("Set-Cookie")
            if cookies:
                response.headers.remove("Set-Cookie")
                for cookie in cookies:
                    response.headers.add("Set-Cookie", cookie if "; Secure" in cookie else cookie + "; Secure")
        return response

    from ..review.views import bp as review_bp
    from .cli import user_group
    from .views import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(review_bp)
    app.cli.add_command(user_group)
