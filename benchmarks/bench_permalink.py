"""Permalink benchmark: a saved configuration's page at 1,000 and at 100,000 saved configurations in PostgreSQL.

A permalink looks its configuration up by slug (a unique index) and recomputes the page from the stored
inputs, so its cost must not grow with the table. This script creates a throwaway database
``lorasite_bench_<pid>`` on the PostgreSQL server at ``--postgres`` (default 127.0.0.1:5432, user postgres;
the server itself is not reconfigured), migrates it, saves 1,000 configurations (each a different rank,
sequence length and micro-batch, so every page is a new configuration), serves it with gunicorn, measures
``/healthz`` and random permalinks with wrk, grows the table to 100,000 and measures again on the same
server, then drops the database. Target (issue 10): flat, i.e. the 100k/1k ratio near 1.

    make bench                    # or: .venv/bin/python benchmarks/bench_permalink.py --seconds 10
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import ROOT, free_port, run_wrk, wait_until_up

SAMPLED_SLUGS = 3000  # the wrk script picks among these, spread over the whole table


def populate(total: int, seed: int) -> None:
    """In a child process with DATABASE_URL set: grow the table to ``total`` configurations."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorasite.settings")
    django.setup()
    from calculator.models import SavedConfiguration, new_slug
    from calculator.schemas import SaveRequest
    from calculator.services.estimates import save_configuration

    rng = random.Random(seed)
    have = SavedConfiguration.objects.count()
    if have == 0:
        body = {"name": "bench", "model": {"preset": "llama-3.1-8b"}, "lora": {"r": 16, "target_modules": "all-linear"}}
        save_configuration(request=SaveRequest.model_validate(body), owner=None)
        have = 1
    template = SavedConfiguration.objects.order_by("pk").first()
    assert template is not None
    batch: list[SavedConfiguration] = []
    for i in range(have, total):
        inputs = {**template.inputs}
        inputs["lora"] = {**inputs["lora"], "r": rng.randint(1, 256)}
        training = {**inputs["training"], "seq_len": rng.randint(16, 32768), "batch_size": rng.randint(1, 64)}
        inputs["training"] = training
        batch.append(
            SavedConfiguration(
                slug=new_slug(), name=f"bench {i}", inputs=inputs, model_snapshot=template.model_snapshot
            )
        )
        if len(batch) == 2000 or i == total - 1:
            SavedConfiguration.objects.bulk_create(batch)
            batch = []
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE calculator_savedconfiguration")
    slugs = list(SavedConfiguration.objects.values_list("slug", flat=True))
    print("\n".join(rng.sample(slugs, min(SAMPLED_SLUGS, len(slugs)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--populate", type=int, help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.populate:
        populate(args.populate, seed=args.populate)
        return

    import psycopg

    name = f"lorasite_bench_{os.getpid()}"
    admin = f"{args.postgres}/postgres"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        raise SystemExit(f"PostgreSQL is needed at {args.postgres} for the permalink benchmark: {error}") from None
    env = dict(os.environ, DATABASE_URL=f"{args.postgres}/{name}", ACCESS_LOG="0", DEBUG="0")
    env["WEB_CONCURRENCY"] = str(args.workers)
    env["WEB_WORKER_CONNECTIONS"] = str(-(-args.connections // args.workers))  # as bench_http.py: each its share
    env["DATABASE_STATEMENT_TIMEOUT"] = "60"  # the bulk inserts, not the pages
    server = None
    results: list[tuple[str, dict[str, float]]] = []
    try:
        python = sys.executable
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        port = free_port()
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "lorasite.wsgi", "--config", "lorasite/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz")
        with tempfile.TemporaryDirectory() as tmp:
            for total in (1_000, 100_000):
                child = [python, __file__, "--populate", str(total)]
                slugs = subprocess.run(child, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
                script = Path(tmp) / f"permalink_{total}.lua"
                table = ",".join(f'"{s}"' for s in slugs.split())
                script.write_text(
                    f"math.randomseed(os.time())\nlocal slugs = {{{table}}}\n"
                    "request = function()\n"
                    "  return wrk.format('GET', '/c/' .. slugs[math.random(#slugs)] .. '/')\nend\n"
                )
                run_wrk(f"{base}/healthz", 1, args.connections, None)  # warm up
                run_wrk(base, 2, args.connections, script)
                results.append(
                    (
                        f"GET /healthz ({total:,} saved)",
                        run_wrk(f"{base}/healthz", args.seconds, args.connections, None),
                    )
                )
                results.append(
                    (f"GET /c/<slug>/ ({total:,} saved)", run_wrk(base, args.seconds, args.connections, script))
                )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"permalinks in PostgreSQL, {args.connections} connections, {args.workers} workers, {args.seconds} s per row")
    print(f"{'endpoint':34} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for i, (label, r) in enumerate(results):
        floor = results[i - i % 2][1]["rps"]
        ratio = r["rps"] / floor
        print(f"{label:34} {r['rps']:9.0f} {ratio:6.2f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8.0f}")
    small, large = results[1][1], results[3][1]
    flat = large["rps"] / small["rps"]
    print(f"permalink 100k / 1k throughput: {flat:.2f} (p50 {small['p50_ms']:.1f} -> {large['p50_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
