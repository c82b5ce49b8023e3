"""Throughput of the sandbox's `POST /2/tweets` on loopback (target: ≥ 500 requests/s).

Starts `tweetbot sandbox` as a real process on a free port, lifts its rate limits
through the control API, gives each of N concurrent clients its own sandbox user and
keep-alive `requests.Session`, and has them post distinct texts (so none is refused as
a duplicate) until a fixed number of posts is done. Prints requests per second and the
latency percentiles, then stops the sandbox. With --state the sandbox keeps its world in a
file, as `tweetbot run` has it, written before each answer (the cost of remembering).

    .venv/bin/python bench/sandbox.py [--clients 8] [--requests 4000] [--state]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sandbox(workdir: str, state: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """A sandbox process with fresh secrets in `workdir` (its world kept in a file there with `state`);
    (process, base URL) once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("X_")}
    env.update(SECRET_KEY=Fernet.generate_key().decode(), TOKEN_KEY=Fernet.generate_key().decode(),
               ADMIN_PASSWORD="bench-password", STORE_PATH=os.path.join(workdir, "tweetbot.json"),
               SANDBOX_PORT=str(port), PUBLIC_URL="http://127.0.0.1:5000")
    kept = ["--state", os.path.join(workdir, "sandbox.state")] if state else []
    process = subprocess.Popen([TWEETBOT, "sandbox", "--port", str(port), *kept], cwd=workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/_sandbox/clock", timeout=1).ok:
                return process, url
        except requests.RequestException:  # not listening yet, or busy booting
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the sandbox did not start")


def client_tokens(url: str, clients: int) -> list[str]:
    """One sandbox user and access token per client, with the rate limits lifted."""
    requests.post(url + "/_sandbox/config", json={"rate_limits": False}, timeout=10).raise_for_status()
    users = requests.post(url + "/_sandbox/users", json={"count": clients, "prefix": "bench"}, timeout=10).json()
    return [requests.post(url + "/_sandbox/grant", json={"user": u["username"]}, timeout=10).json()["access_token"]
            for u in users["users"]]


def run(url: str, tokens: list[str], per_client: int) -> tuple[float, list[float], int]:
    """Every client posts `per_client` distinct texts; (elapsed s, latencies, count of 201s)."""
    latencies: list[float] = []
    created = [0]
    lock = threading.Lock()
    start = threading.Barrier(len(tokens) + 1)

    def client(index: int, token: str) -> None:
        """One client: warm up its connection, wait for the start, post, record."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        session.post(url + "/2/tweets", json={"text": f"warm-up {index}"}, timeout=10)  # open the connection
        mine, ok = [], 0
        start.wait()
        for n in range(per_client):
            began = time.perf_counter()
            answer = session.post(url + "/2/tweets", json={"text": f"bench client {index} post {n}"}, timeout=10)
            mine.append(time.perf_counter() - began)
            ok += answer.status_code == 201
        with lock:
            latencies.extend(mine)
            created[0] += ok

    threads = [threading.Thread(target=client, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, created[0]


def main() -> None:
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000, help="total posts (split among the clients)")
    parser.add_argument("--state", action="store_true", help="keep the world in a state file (as tweetbot run does)")
    args = parser.parse_args()
    per_client = max(args.requests // args.clients, 1)
    with tempfile.TemporaryDirectory() as workdir:
        process, url = start_sandbox(workdir, args.state)
        try:
            tokens = client_tokens(url, args.clients)
            elapsed, latencies, created = run(url, tokens, per_client)
        finally:
            process.terminate()
            process.wait(timeout=10)
    total = per_client * args.clients
    cuts = statistics.quantiles(latencies, n=100)
    kept = ", the world kept in a state file" if args.state else ""
    print(f"POST /2/tweets on loopback, {args.clients} concurrent keep-alive clients, {total} posts "
          f"({created} answered 201){kept}")
    print(f"  {total / elapsed:,.0f} requests/s   (target ≥ 500/s)   elapsed {elapsed:.2f} s")
    print(f"  latency p50 {cuts[49] * 1000:.1f} ms   p90 {cuts[89] * 1000:.1f} ms   p99 {cuts[98] * 1000:.1f} ms")
    if created != total:
        raise SystemExit(f"only {created} of {total} posts were created")


if __name__ == "__main__":
    main()
