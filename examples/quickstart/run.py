"""The dvlite quickstart, run end to end in a throwaway folder.

It makes a git repo, tracks a small dataset with dvlite, pushes it to a
folder that plays the team's storage, clones the repo elsewhere and pulls the
data, changes it, commits twice, goes back in history and checks that every
byte came back. Run it with ``python examples/quickstart/run.py`` after
installing dvlite.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "dvlite quickstart", "GIT_AUTHOR_EMAIL": "quickstart@dvlite.invalid",
    "GIT_COMMITTER_NAME": "dvlite quickstart", "GIT_COMMITTER_EMAIL": "quickstart@dvlite.invalid",
}


def sh(*cmd: str, cwd: Path) -> str:
    print("$", " ".join(cmd))
    out = subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True, text=True)
    for line in (out.stdout + out.stderr).splitlines():
        print("   ", line)
    return out.stdout


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, computed independently of dvlite."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAILED"), what)
    if not condition:
        sys.exit(1)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dvlite-quickstart-"))
    try:
        run(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path) -> None:
    project = root / "project"
    project.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=project)
    sh("dvlite", "init", cwd=project)
    # the team's storage: any fsspec URL works (s3://, az://, ssh://...); a folder here
    sh("dvlite", "remote", "add", "-d", "storage", str(root / "storage"), cwd=project)

    images = project / "data" / "images"
    images.mkdir(parents=True)
    for i in range(50):
        (images / f"img_{i:03}.bin").write_bytes(os.urandom(4096 + i))
    (project / "data" / "labels.csv").write_text("".join(f"{i},cat\n" for i in range(50)))
    sh("dvlite", "add", "data", cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-q", "-m", "data v1", cwd=project)
    v1 = fingerprint(project / "data")
    check("/data" in (project / ".gitignore").read_text().split(), "git ignores the data folder")
    sh("dvlite", "push", cwd=project)

    teammate = root / "teammate"
    sh("git", "clone", "-q", str(project), str(teammate), cwd=root)
    check(not (teammate / "data").exists(), "a git clone brings the pointers, not the data")
    sh("dvlite", "pull", cwd=teammate)
    check(fingerprint(teammate / "data") == v1, "pull brings every byte to the clone")

    (images / "img_000.bin").write_bytes(b"relabelled")
    (images / "img_001.bin").unlink()
    (project / "data" / "labels.csv").write_text("0,dog\n")
    status = sh("dvlite", "status", cwd=project)
    check(status.startswith("modified:"), "status sees the change")
    sh("dvlite", "diff", cwd=project)
    sh("dvlite", "add", "data", cwd=project)
    sh("git", "commit", "-q", "-am", "data v2", cwd=project)
    v2 = fingerprint(project / "data")

    sh("git", "checkout", "-q", "HEAD~1", cwd=project)
    sh("dvlite", "checkout", cwd=project)
    check(fingerprint(project / "data") == v1, "going back to v1 restores every byte")
    check(sh("dvlite", "status", cwd=project) == "", "status is clean at v1")

    sh("git", "checkout", "-q", "main", cwd=project)
    sh("dvlite", "checkout", cwd=project)
    check(fingerprint(project / "data") == v2, "returning to main restores v2")
    sh("dvlite", "diff", "HEAD~1", "HEAD", cwd=project)
    sh("dvlite", "push", cwd=project)
    status = sh("dvlite", "status", "--remote", cwd=project)
    check(status == "", "everything is on the remote")
    sh("dvlite", "fsck", cwd=project)
    print("quickstart: all checks passed")


if __name__ == "__main__":
    main()
