"""dvlite against DVC (and git-lfs) on the same data, side by side with the hardware's limits.

    python benchmarks/run.py [--quick] [--workloads W1,W2,W3,W4] [--links copy,hardlink]
                             [--tools dvlite,DVC,git-lfs] [--remotes local,s3]
                             [--repeat N] [--json OUT.json] [--workdir DIR]

The dvlite under test is the one installed in this interpreter; DVC is installed into a
virtual environment under the work folder (kept between runs); git-lfs is used when `git
lfs` works or apt-get can install it. See docs/benchmarks.md for what each step measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import references
import tools
from measure import run
from remotes import LocalRemote, Remote, S3Remote, moto_server, remove
from report import Results, machine, reference_table, table
from scenario import Context, bench_cli, bench_workload
from workloads import Workload, apply_change, generate, workloads

DISK_FACTOR = 7  # data + workspace + cache + remote + clone (+ cache), with room to spare


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small workloads (64 MiB, 2,000 files, 20,000 tiny), one run each, "
                        "copy links only")
    parser.add_argument("--workloads", default="W1,W2,W3,W4",
                        help="W3 is W2 changed, so it brings W2 along (default: all)")
    parser.add_argument("--links", help="link types (default: copy,hardlink; --quick: copy)")
    parser.add_argument("--tools", default="dvlite,DVC,git-lfs",
                        help="tools to run (default: all; git-lfs only where installable)")
    parser.add_argument("--remotes", default="local,s3", help="remotes for push and pull")
    parser.add_argument("--repeat", type=int, help="runs per step (default: 3, --quick: 1)")
    parser.add_argument("--json", type=Path, help="where to write the results (default: "
                        "WORKDIR/results.json)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "dvlite-bench",
                        help="data, repos, remotes and the DVC venv (default: %(default)s)")
    args = parser.parse_args(argv)
    args.links = args.links or ("copy" if args.quick else "copy,hardlink")
    return args


def select(names: str, *, quick: bool) -> list[Workload]:
    wanted = {name.strip().upper() for name in names.split(",")}
    chosen = []
    for name, workload in workloads(quick=quick).items():
        if name in wanted or (name == "W2" and "W3" in wanted):
            chosen.append(workload if "W3" in wanted or name != "W2"
                          else dataclasses.replace(workload, change=None))
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop moto_server on the way out
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = select(args.workloads, quick=args.quick)
    need = max(w.files * w.max_size for w in chosen) * DISK_FACTOR
    if shutil.disk_usage(workdir).free < need:
        print(f"error: {workdir} needs about {need / 2**30:.1f} GiB free", file=sys.stderr)
        return 1
    env = tools.environment(workdir)
    chosen_tools = _tools(args.tools, workdir, env)
    log = workdir / "bench.log"
    log.write_text("")
    remove(workdir / "runs")
    results = Results()
    ctx = Context(env, args.repeat or (1 if args.quick else 3), workdir / "runs", log,
                  results.record)
    ctx.scratch.mkdir()
    print(f"benchmark: {', '.join(w.name for w in chosen)}; {ctx.repeat} run(s) per step; "
          f"log: {log}", file=sys.stderr)
    started, load_before = time.time(), os.getloadavg()
    with moto_server(workdir / "moto.log") as endpoint:
        remotes = _remotes(args.remotes, endpoint, workdir)
        for workload in chosen:
            print(f"{workload.name}: {workload.describe()}", file=sys.stderr)
            tree = generate(workload, workdir / "data" / (workload.name +
                                                          ("-quick" if args.quick else "")))
            results.references[workload.name] = _references(workload, tree, ctx)
            links = args.links.split(",")
            for link in links:  # S3 with the first link type only: the push is the same
                for tool in chosen_tools:
                    if link in tool.links:
                        bench_workload(ctx, tool, workload, tree, link=link, remotes=[
                            r for r in remotes if link == links[0] or r.name != "s3"])
        results.references["CLI"] = {"python -c pass": statistics.median(
            references.interpreter_start(ctx.scratch, env, log) for _ in range(ctx.repeat))}
        for tool in chosen_tools:
            bench_cli(ctx, tool)
    remove(ctx.scratch)
    rows = results.rows()
    print(table(rows, [tool.name for tool in chosen_tools]))
    print()
    print(reference_table(results.references))
    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv, "quick": args.quick, "repeat": ctx.repeat, "links": args.links,
        "elapsed_s": round(time.time() - started, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": machine(workdir), "versions": tools.versions(chosen_tools, env),
        "workloads": {w.name: w.describe() for w in chosen},
        "commands": {tool.name: tool.steps for tool in chosen_tools},
        "references": results.references, "rows": rows,
    }
    out = args.json or workdir / "results.json"
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\nresults: {out} ({document['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


def _tools(names: str, workdir: Path, env: dict[str, str]) -> list[tools.Tool]:
    wanted = {name.strip().lower() for name in names.split(",")}
    found = []
    if "dvlite" in wanted:
        found.append(tools.with_version_flag(tools.dvlite(), env))
    if "dvc" in wanted:
        found.append(tools.dvc(workdir))
    if "git-lfs" in wanted:
        lfs = tools.git_lfs(install=True)
        if lfs:
            found.append(lfs)
        else:
            print("note: git-lfs is not available; its column stays empty", file=sys.stderr)
    return found


def _remotes(names: str, endpoint: str | None, workdir: Path) -> list[Remote]:
    found: list[Remote] = []
    if "local" in names:
        found.append(LocalRemote(workdir / "remotes"))
    if "s3" in names and endpoint:
        found.append(S3Remote(endpoint))
    elif "s3" in names:
        print("note: moto_server is not installed (pip install -e '.[bench]'): no S3 rows",
              file=sys.stderr)
    return found


def _references(workload: Workload, tree: Path, ctx: Context) -> dict[str, float]:
    changed = None
    if workload.change:
        w3 = ctx.scratch / "w3"
        remove(w3)
        w3.mkdir()
        run([["cp", "-r", str(tree / workload.target), workload.target]], cwd=w3, env=ctx.env,
            log=ctx.log)
        changed = (w3, apply_change(workload, w3))
    found = references.measure(tree, workload.target, changed, scratch=ctx.scratch / "refs",
                               repeat=ctx.repeat, env=ctx.env, log=ctx.log)
    remove(ctx.scratch / "w3")
    print("  references: " + ", ".join(f"{k} {v:.3f} s" for k, v in found.items()),
          file=sys.stderr)
    return found


if __name__ == "__main__":
    sys.exit(main())
