"""A small machine-learning project versioned with dvlite, walked through end to end.

The project in this folder has three stages (prepare, train, evaluate) on the digits
dataset that ships inside scikit-learn, parameters in ``params.toml`` and metrics in
``metrics.json``. This script copies it into a throwaway git repo and then:

1. runs the pipeline (``dvlite repro``), commits and tags ``v1``, pushes the outputs;
2. changes a training parameter: ``repro`` reruns train and evaluate, not prepare;
3. compares parameters and metrics with ``v1`` (``params diff``, ``metrics diff --md``);
4. rebuilds ``v1`` from scratch in a temporary worktree (``repro --rev v1``) and checks
   that every output comes out bit for bit as ``v1``'s lock recorded it;
5. goes back to ``v1`` with git and gets its model back without running anything.

Run it with ``pip install '.[examples]' && python examples/ml-pipeline/run.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PROJECT_FILES = ("dvlite.toml", "params.toml", "src")
ENV = {
    **os.environ,
    # the stages run `python`: make it this interpreter, which has scikit-learn
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    "GIT_AUTHOR_NAME": "dvlite example", "GIT_AUTHOR_EMAIL": "example@dvlite.invalid",
    "GIT_COMMITTER_NAME": "dvlite example", "GIT_COMMITTER_EMAIL": "example@dvlite.invalid",
}


def run(*cmd: str, cwd: Path, expect: int = 0) -> str:
    """Run ``cmd``, echo it and what it printed, check its exit code, return its stdout."""
    print("$", " ".join(cmd))
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        print("   ", line)
    if done.returncode != expect:
        sys.exit(f"FAILED: `{' '.join(cmd)}` exited with {done.returncode}, not {expect}")
    return done.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAILED"), what)
    if not condition:
        sys.exit(1)


def walkthrough(root: Path) -> None:
    project = root / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        copy = shutil.copytree if (HERE / name).is_dir() else shutil.copy
        copy(HERE / name, project / name)
    run("git", "init", "-q", "-b", "main", cwd=project)
    run("dvlite", "init", cwd=project)
    run("dvlite", "remote", "add", "-d", "storage", str(root / "storage"), cwd=project)

    # 1. the first run: every stage runs, dvlite.lock pins data, params and outputs
    run("dvlite", "dag", cwd=project)
    run("dvlite", "repro", cwd=project)
    model = project / "models" / "model.pkl"
    v1_model = sha256(model)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-q", "-m", "forest of 20 trees", cwd=project)
    run("git", "tag", "v1", cwd=project)
    run("dvlite", "push", cwd=project)
    verify(run("dvlite", "repro", "--dry-run", cwd=project) == "", "v1: nothing left to run")

    # 2. a parameter change reruns only what depends on it
    params = project / "params.toml"
    params.write_text(params.read_text().replace("n_estimators = 20", "n_estimators = 60"))
    plan = run("dvlite", "repro", "--dry-run", "--json", cwd=project)
    verify('"prepare"' in plan and '"would run"' in plan, "the dry run explains what would run")
    done = run("dvlite", "repro", "--json", cwd=project)
    verify(done.count('"ran"') == 2 and '"skipped"' in done,
           "train and evaluate reran; prepare was skipped")
    verify(sha256(model) != v1_model, "the new model differs")
    run("git", "commit", "-q", "-am", "forest of 60 trees", cwd=project)
    run("dvlite", "push", cwd=project)

    # 3. what changed, ready for a pull request comment
    verify("train.n_estimators" in run("dvlite", "params", "diff", "v1", cwd=project),
           "params diff names the changed parameter")
    table = run("dvlite", "metrics", "diff", "v1", "HEAD", "--md", "--all", cwd=project)
    verify("accuracy" in table and table.startswith("|"), "metrics diff prints a Markdown table")

    # 4. rebuild v1 from scratch in a temporary worktree, checking every output bit for bit
    report = run("dvlite", "repro", "--rev", "v1", cwd=project)
    verify("models/model.pkl" in report and "differs" not in report,
           "repro --rev v1 rebuilt every output bit for bit")
    verify(run("git", "status", "--porcelain", cwd=project) == "",
           "the rebuild left the workspace and git untouched")

    # 5. go back in history: the old model returns from the cache, nothing reruns
    run("git", "checkout", "-q", "v1", cwd=project)
    run("dvlite", "checkout", cwd=project)
    verify(sha256(model) == v1_model, "checking out v1 brings back v1's exact model")
    run("git", "checkout", "-q", "main", cwd=project)
    run("dvlite", "checkout", cwd=project)
    teammate = root / "teammate"
    run("git", "clone", "-q", str(project), str(teammate), cwd=root)
    run("dvlite", "pull", cwd=teammate)
    verify(run("dvlite", "repro", "--dry-run", cwd=teammate) == "",
           "a teammate's clone pulls every output and has nothing to rerun")
    print("ml-pipeline: all checks passed")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dvlite-ml-pipeline-"))
    try:
        walkthrough(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
