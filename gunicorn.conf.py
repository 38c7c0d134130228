"""gunicorn settings (read by default from the checkout: `gunicorn wsgi:app`; `make run` passes it explicitly).

Threaded workers: a client that sends half a request, or a check waiting on the database lock, holds one thread,
not a whole worker, so /healthz and other checks keep answering. A site puts a reverse proxy in front (see
README, "Serving"), which buffers whole requests and enforces client timeouts before gunicorn sees them.
"""

import os

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))  # per worker: more only adds GIL contention
timeout = 60  # a worker whose main loop is silent this long is restarted
graceful_timeout = 30
keepalive = 5
# Request lines up to 8190 bytes reach the app, which answers a URL over MAX_URL_LENGTH with a JSON 414.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The path without its query string: a key someone put in a URL never reaches the log; no referer either.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# A check's audit write takes the writer's turn and then gives up the GIL at every syscall inside it (BEGIN,
# INSERT, COMMIT's fsync, the anchor's pwrite); each time, getting it back from a thread busy checking waited up
# to Python's 5 ms switch interval while every other writer queued behind. 0.5 ms: ~10 % more checks/s (A/B).
GIL_SWITCH_INTERVAL = 0.0005


def post_worker_init(worker):
    """Each worker process: the shorter GIL switch interval (see GIL_SWITCH_INTERVAL)."""
    import sys

    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
