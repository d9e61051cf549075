"""gunicorn settings for `make run` and production: stateless threaded workers behind any load balancer.

Threaded workers (gthread): a connection costs a thread only while its request is being read or
answered; idle keep-alive connections wait in the worker's poller, and a connection that sends nothing
is handed back to it after a few seconds. So a handful of slow clients (slowloris, a phone on a bad
network) cannot take every worker, as they do with sync workers (one connection per process). In
production, put a buffering reverse proxy (nginx, or a load balancer that buffers requests) in front:
then no slow client ever reaches a worker (README, "Deployment").
"""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("WEB_THREADS", "8"))  # > the slow clients one worker may be handed
# The most connections one worker holds (gunicorn's default 1000). Keep-alive connections stay with the worker
# that accepted them, so a burst accepted by one worker stays there; the benchmark sets connections / workers.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "1000"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
preload_app = True
# The calculator's state lives in the URL (a pasted config.json included): allow long request lines.
limit_request_line = 8190


def post_worker_init(worker: object) -> None:
    """Compile templates and load the catalog before the worker's first request, then move everything
    loaded so far out of the garbage collector's sight (``gc.freeze``): the app, the catalog and the compiled
    templates live as long as the worker, and each full collection otherwise walks them all again."""
    import gc

    from calculator.warmup import warm_up

    warm_up()
    gc.freeze()
