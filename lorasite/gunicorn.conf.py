"""gunicorn settings for `make run`: stateless sync workers, any number behind a load balancer."""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
preload_app = True
# The calculator's state lives in the URL (a pasted config.json included): allow long request lines.
limit_request_line = 8190


def post_worker_init(worker: object) -> None:
    """Compile templates and load the catalog before the worker's first request."""
    from calculator.warmup import warm_up

    warm_up()
