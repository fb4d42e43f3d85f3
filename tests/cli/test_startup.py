"""Start-up cost without timings: which modules a real `dvlite` process loads.

`--help`, `--version` and `CMD --help` load no ops, storage, remote, git, fsspec, rich,
yaml, xxhash or tomli_w; `--version` not even typer; no command loads pydantic (typer's
coercion, bypassed for plain values); everyday commands (status, diff, add, checkout) load
neither GitPython nor fsspec. Each probe runs ``main()`` in a fresh interpreter and lists
``sys.modules`` at exit.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

import dvlite

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("\\n@modules " + " ".join(sorted(sys.modules)) + "\\n"))
from dvlite.cli import main
main(sys.argv[1:])
"""

# Loaded by the interpreter itself here (site's .pth files), whatever dvlite does.
_BASELINE = subprocess.run(
    [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
    capture_output=True, text=True, check=True, timeout=60,
).stdout.split()

HEAVY = ("dvlite.ops", "dvlite.storage", "dvlite.remote", "dvlite.repo", "dvlite.workspace",
         "fsspec", "git", "rich", "certifi", "yaml", "xxhash", "tomli_w", "pydantic")


@dataclass(frozen=True)
class Probe:
    code: int
    out: str
    err: str
    modules: frozenset[str]

    def loaded(self, *names: str) -> list[str]:
        """Which of ``names`` (a package stands for its submodules too) this run loaded,
        beyond what a bare interpreter loads."""
        return sorted(name for name in names for module in self.modules - set(_BASELINE)
                      if module == name or module.startswith(name + "."))


def probe(*args: str, cwd: Path | None = None) -> Probe:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    err, marker, modules = proc.stderr.rpartition("\n@modules ")
    assert marker, proc.stderr
    return Probe(proc.returncode, proc.stdout, err, frozenset(modules.split()))


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["status", "--help"], ["add", "-h"], ["remote", "add", "--help"],
    ["metrics", "diff", "--help"], ["repro", "--help"], ["push", "--help"], ["-h", "init"],
], ids=" ".join)
def test_help_loads_no_command_code(args: list[str]) -> None:
    result = probe(*args)
    assert result.code == 0, result.err
    assert result.out.startswith("Usage: dvlite"), result.out
    assert result.loaded(*HEAVY) == []


def test_version_flag_prints_the_first_line_of_version_and_loads_no_typer() -> None:
    result = probe("--version")
    assert (result.code, result.err.strip()) == (0, "")
    assert result.out == f"dvlite {dvlite.__version__}\n"
    assert result.loaded("typer", "click", *HEAVY) == []
    full = probe("version")
    assert full.code == 0, full.err
    assert full.out.splitlines()[0] == result.out.rstrip("\n")


@pytest.mark.parametrize("args", [["-v", "--version"], ["--version", "-q"],
                                  ["-C", ".", "--version"], ["--version", "status"]])
def test_version_flag_beside_global_options(args: list[str]) -> None:
    result = probe(*args)
    assert (result.code, result.out) == (0, f"dvlite {dvlite.__version__}\n"), result.err


def test_help_lists_the_version_flag() -> None:
    assert "--version" in probe("-h").out


def test_version_is_not_an_option_of_commands() -> None:
    result = probe("status", "--version")
    assert result.code == 2
    assert result.err.startswith("error: No such option: --version"), result.err


def test_everyday_commands_load_no_git_library_nor_fsspec(tracked: TmpRepo) -> None:
    """Git is asked through the git binary; fsspec waits for a remote; pydantic and rich
    for nothing dvlite does without a terminal."""
    (tracked.root / "model.bin").write_bytes(b"model weights v2\n")
    for args in (["status"], ["status", "--json"], ["diff"], ["diff", "--json", "HEAD"],
                 ["add", "model.bin"], ["checkout"], ["ls", "--rev", "HEAD"]):
        result = probe(*args, cwd=tracked.root)
        assert result.code == 0, result.err
        assert result.loaded("git", "fsspec", "pydantic", "rich") == [], args
    assert "model.bin" in probe("diff", cwd=tracked.root).out  # the change was seen


def test_arguments_reach_the_command_through_the_quick_group(tracked: TmpRepo) -> None:
    (tracked.root / "model.bin").write_bytes(b"changed\n")
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    result = probe("status", "--exit-code", "model.bin", cwd=tracked.root)
    assert result.code == 1  # --exit-code, a bool flag
    lines = result.out.splitlines()  # only the target given, a list argument
    assert len(lines) == 1
    assert lines[0].startswith("modified:")
    assert lines[0].split()[1] == "model.bin"
    assert probe("-C", "data", "status", "a.csv", cwd=tracked.root).out.split()[:2] == \
        ["modified:", "data/a.csv"]  # -C, a text option of the root


def test_bad_option_values_still_get_typers_messages(tracked: TmpRepo) -> None:
    """Plain values skip pydantic; the rest still reach it, with its checks and messages."""
    for jobs, words in (("0", "greater than or equal to 1"), ("x", "valid integer")):
        result = probe("add", "-j", jobs, "data", cwd=tracked.root)
        assert result.code == 2
        assert result.err.startswith("error: Invalid value for '-j' / '--jobs'"), result.err
        assert words in result.err.splitlines()[0]
    assert probe("add", "-j", "2", "data", cwd=tracked.root).code == 0


def test_status_checkout_and_what_git_runs_load_no_typer(tracked: TmpRepo) -> None:
    """A plain `status`, `checkout` and the hooks' and merge drivers' commands run without
    typer: git runs them on every commit, checkout and merge."""
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    status = probe("-q", "-C", "data", "status", "a.csv", cwd=tracked.root)
    assert status.code == 0, status.err
    assert status.out.split()[:2] == ["modified:", "data/a.csv"]  # -C and the target reached it
    hook = probe("git-hook", "pre-commit", cwd=tracked.root)
    assert hook.code == 1  # the commit would record a pointer that no longer matches its data
    assert hook.err.startswith("error: "), hook.err
    assert "data" in hook.err.splitlines()[0]
    (tracked.root / "data" / "a.csv").unlink()
    checkout = probe("-v", "checkout", "data", cwd=tracked.root)
    assert checkout.code == 0, checkout.err
    assert checkout.err.startswith("1 written, 0 removed"), checkout.err
    assert (tracked.root / "data" / "a.csv").read_text() != "changed\n"
    (tracked.root / "base").write_text("x")
    merge = probe("git-merge-driver", "nonsense", "base", "base", "base", "p", cwd=tracked.root)
    assert merge.code == 2
    assert merge.err.startswith("error: unknown merge driver `nonsense`"), merge.err
    for result in (status, checkout, hook, merge):
        assert result.loaded("typer", "click") == []


@pytest.mark.parametrize(("args", "code", "start"), [
    (["status", "--json"], 0, "{"),  # an option: typer's path
    (["status", "-h"], 0, "Usage: dvlite status"),
    (["checkout", "--force"], 0, ""),
    (["git-hook"], 2, "error: Missing argument 'name'"),
    (["git-merge-driver", "pointer", "a"], 2, "error: Missing argument"),
    (["status", "--", "data"], 0, ""),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_anything_but_plain_arguments_goes_through_typer(
    tracked: TmpRepo, args: list[str], code: int, start: str,
) -> None:
    result = probe(*args, cwd=tracked.root)
    assert result.code == code, result.err
    assert (result.out if code == 0 else result.err).startswith(start), (result.out, result.err)
    assert "typer" in result.loaded("typer")
