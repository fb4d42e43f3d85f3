"""dvlite against DVC (and git-lfs) on the same data, side by side with the hardware's limits.

    python benchmarks/run.py [--quick] [--workloads W1,W2,W3,W4,W5,W6,W7]
                             [--links copy,hardlink]
                             [--tools dvlite,dvlite-off,dvlite-fsmon,DVC,git-lfs]
                             [--remotes local,s3]
                             [--repeat N] [--json OUT.json] [--workdir DIR]

The dvlite under test is the one installed in this interpreter; DVC is installed into a
virtual environment under the work folder (kept between runs); git-lfs is used when `git
lfs` works or apt-get can install it. W5-W7 (issue 9: chunks and packs) run only when named,
with dvlite, dvlite-off (dvlite with chunks and packs off) and DVC; dvlite-fsmon (dvlite
with its file-system watcher on) runs W1-W4 without remotes. See docs/benchmarks.md for what
each step measures.
"""

from __future__ import annotations

import argparse
import contextlib
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
from report import Results, machine, reference_table, storage_table, table
from scenario import Context, bench_cli, bench_workload
from storage import bench_files, bench_versions
from versions import Versions, generate_first, storage_workloads
from wire import CountingProxy, RequestLog
from workloads import Workload, apply_change, generate, workloads

DISK_FACTOR = 7  # data + workspace + cache + remote + clone (+ cache), with room to spare


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small workloads (64 MiB, 2,000 files, 20,000 tiny), one run each, "
                        "copy links only")
    parser.add_argument("--workloads", default="W1,W2,W3,W4",
                        help="W3 is W2 changed, so it brings W2 along; W5, W6, W7 are issue "
                        "9's (default: %(default)s)")
    parser.add_argument("--links", help="link types (default: copy,hardlink; --quick: copy)")
    parser.add_argument("--tools", default="dvlite,dvlite-off,dvlite-fsmon,DVC,git-lfs",
                        help="tools to run (default: all; git-lfs only where installable; "
                        "dvlite-off in W5-W7 only, git-lfs in W1-W4 only, dvlite-fsmon (with "
                        "core.fsmonitor) in W1-W4 without remotes)")
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


def select_storage(names: str, *, quick: bool) -> list[Versions | Workload]:
    wanted = {name.strip().upper() for name in names.split(",")}
    return [w for name, w in storage_workloads(quick=quick).items() if name in wanted]


def _disk(workload: Versions | Workload) -> int:
    """Bytes of free disk a workload needs, about."""
    if isinstance(workload, Workload):
        return workload.files * workload.max_size * DISK_FACTOR
    # every version in the cache and (chunks off) on the remote, plus data, workspace, clone
    return workload.size * (2 * len(workload.edits) + 6)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop moto_server on the way out
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = select(args.workloads, quick=args.quick)
    storage = select_storage(args.workloads, quick=args.quick)
    need = max((_disk(w) for w in [*chosen, *storage]), default=0)
    if shutil.disk_usage(workdir).free < need:
        print(f"error: {workdir} needs about {need / 2**30:.1f} GiB free", file=sys.stderr)
        return 1
    env = tools.environment(workdir)
    every_tool = _tools(args.tools, workdir, env)
    chosen_tools = [tool for tool in every_tool if tool.name != "dvlite-off"]
    storage_tools = [tool for tool in every_tool if tool.name not in ("git-lfs", "dvlite-fsmon")]
    log = workdir / "bench.log"
    log.write_text("")
    remove(workdir / "runs")
    results = Results()
    ctx = Context(env, args.repeat or (1 if args.quick else 3), workdir / "runs", log,
                  results.record)
    ctx.scratch.mkdir()
    print(f"benchmark: {', '.join(w.name for w in [*chosen, *storage])}; {ctx.repeat} run(s) "
          f"per step; log: {log}", file=sys.stderr)
    started, load_before = time.time(), os.getloadavg()
    with contextlib.ExitStack() as stack:
        remotes = _remotes(args.remotes, workdir, stack)
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
        for kept in storage:
            _bench_storage(ctx, kept, storage_tools, remotes,
                           workdir / "data" / (kept.name + ("-quick" if args.quick else "")))
        if chosen:
            results.references["CLI"] = {"python -c pass": statistics.median(
                references.interpreter_start(ctx.scratch, env, log) for _ in range(ctx.repeat))}
            for tool in chosen_tools:
                bench_cli(ctx, tool)
    remove(ctx.scratch)
    rows = results.rows()
    storage_names = {w.name for w in storage}
    if chosen:
        print(table([r for r in rows if r["group"].split()[0] not in storage_names],
                    [tool.name for tool in chosen_tools]))
        print()
        print(reference_table(results.references))
    moved = [r for r in rows if r["group"].split()[0] in storage_names or any(
        "traffic" in r[t.name] for t in every_tool if t.name in r)]
    if moved:
        print()
        print(storage_table(moved, [tool.name for tool in every_tool]))
    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv, "quick": args.quick, "repeat": ctx.repeat, "links": args.links,
        "elapsed_s": round(time.time() - started, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": machine(workdir), "versions": tools.versions(chosen_tools, env),
        "workloads": {w.name: w.describe() for w in [*chosen, *storage]},
        "commands": {tool.name: tool.steps for tool in every_tool},
        "references": results.references, "rows": rows,
    }
    out = args.json or workdir / "results.json"
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\nresults: {out} ({document['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


def _tools(names: str, workdir: Path, env: dict[str, str]) -> list[tools.Tool]:
    wanted = {name.strip().lower() for name in names.split(",")}
    found = []
    dvlite = tools.with_version_flag(tools.dvlite(), env)
    if "dvlite" in wanted:
        found.append(dvlite)
    if "dvlite-off" in wanted:
        found.append(tools.dvlite_off(dvlite))
    if "dvlite-fsmon" in wanted:
        found.append(tools.dvlite_watched(dvlite))
    if "dvc" in wanted:
        found.append(tools.dvc(workdir))
    if "git-lfs" in wanted:
        lfs = tools.git_lfs(install=True)
        if lfs:
            found.append(lfs)
        else:
            print("note: git-lfs is not available; its column stays empty", file=sys.stderr)
    return found


def _remotes(names: str, workdir: Path, stack: contextlib.ExitStack) -> list[Remote]:
    """The remotes named; S3's moto_server and counting proxy run until `stack` closes."""
    found: list[Remote] = []
    if "local" in names:
        found.append(LocalRemote(workdir / "remotes"))
    endpoint = stack.enter_context(moto_server(workdir / "moto.log")) if "s3" in names \
        else None
    if endpoint:
        proxy = stack.enter_context(contextlib.closing(CountingProxy(endpoint)))
        found.append(S3Remote(endpoint, proxy, RequestLog(workdir / "moto.log", endpoint)))
    elif "s3" in names:
        print("note: moto_server is not installed (pip install -e '.[bench]'): no S3 rows",
              file=sys.stderr)
    return found


def _bench_storage(ctx: Context, workload: Versions | Workload, chosen: list[tools.Tool],
                   remotes: list[Remote], data: Path) -> None:
    """W5, W6 or W7: every tool against every remote, once."""
    print(f"{workload.name}: {workload.describe()}", file=sys.stderr)
    source = (generate_first(workload, data) if isinstance(workload, Versions)
              else generate(workload, data))
    for remote in remotes:
        for tool in chosen:
            if isinstance(workload, Versions):
                bench_versions(ctx, tool, workload, source, remote)
            else:
                bench_files(ctx, tool, workload, source, remote)


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
