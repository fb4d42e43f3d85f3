"""Push throughput to a local S3 API server (moto), sequential against parallel.

    python benchmarks/push_s3.py --files 20000

Generates N small files (1-32 KiB) in a throwaway repo, starts `moto_server`
on 127.0.0.1, and times `dvlite push -j 1` and `dvlite push` (the default
parallelism) into fresh buckets, printing objects per second for each.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@dvlite.invalid",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@dvlite.invalid"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dvlite-bench-"))
    port = free_port()
    server = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/")
                break
            except OSError:
                time.sleep(0.1)
        repo = root / "repo"
        rng = random.Random(1)
        for i in range(args.files):
            path = repo / "data" / f"d{i % 100:03}" / f"f{i:06}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(rng.randint(1024, 32 * 1024)))
        run("git", "init", "-q", cwd=repo)
        run("dvlite", "init", cwd=repo)
        run("dvlite", "add", "-q", "data", cwd=repo)
        for label, jobs in (("-j 1", ["-j", "1"]), ("default", [])):
            bucket = f"bench-{label.replace(' ', '').replace('-', '')}"
            run("dvlite", "remote", "add", "-f", "-d", "s3", f"s3://{bucket}/store", cwd=repo)
            run("dvlite", "remote", "modify", "s3", "endpoint_url", f"http://127.0.0.1:{port}",
                cwd=repo)
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/{bucket}", method="PUT"))
            start = time.perf_counter()
            run("dvlite", "push", "-q", *jobs, cwd=repo)
            seconds = time.perf_counter() - start
            objects = args.files + 1  # the files and the folder's manifest
            print(f"push {label:>8}: {objects} objects in {seconds:6.1f} s = "
                  f"{objects / seconds:6.0f} objects/s")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
