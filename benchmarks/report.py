"""The results: medians, ratios, limits and the issue's targets, as Markdown tables and JSON."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
from collections import defaultdict
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from references import LIMITS

if TYPE_CHECKING:
    from pathlib import Path

    from measure import Sample

# (step, workloads it applies to, max dvlite/DVC, max dvlite/limit): issue 6's targets
RATIO_TARGETS: list[tuple[str, tuple[str, ...], float, float | None]] = [
    ("add", ("W1", "W2"), 0.2, 1.5),
    ("status", ("W2", "W4"), 0.15, 2.0),
    ("status W3", ("W2",), 0.2, None),
    ("re-add W3", ("W2",), 0.2, None),
    *[(f"{verb} {remote}", ("W1", "W2"), 0.2, None)
      for verb in ("push", "pull") for remote in ("local", "s3")],
    ("checkout", ("W2",), 0.2, None),
]
WALL_TARGETS = {"--help": 0.15, "--version": 0.15}  # seconds
MIB = 1024.0


class Results:
    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], dict[str, list[Sample]]] = defaultdict(
            lambda: defaultdict(list))
        self.references: dict[str, dict[str, float]] = {}

    def record(self, group: str, step: str, tool: str, sample: Sample) -> None:
        self.samples[group, step][tool].append(sample)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for (group, step), by_tool in self.samples.items():
            row: dict[str, Any] = {"group": group, "step": step}
            for tool, samples in by_tool.items():
                row[tool] = {"median_s": statistics.median(s.seconds for s in samples),
                             "peak_mib": max(s.peak_kib for s in samples) / MIB,
                             "samples": [asdict(s) for s in samples]}
                if samples[-1].traffic:  # each sample starts from a fresh store: the same
                    row[tool]["traffic"] = asdict(samples[-1].traffic)
            row["vs_dvc"] = _ratio(row, "DVC")
            # dvlite with another setting (dvlite-fsmon, dvlite-off) against DVC too
            row["variants_vs_dvc"] = {tool: _ratio(row, "DVC", tool) for tool in by_tool
                                      if tool.startswith("dvlite-")}
            workload = group.split()[0]
            names = LIMITS.get(step, ())
            refs = self.references.get(workload, {})
            row["limit_s"] = sum(refs[n] for n in names) if all(n in refs for n in names) \
                and names else None
            row["limit_of"] = list(names)
            row["vs_limit"] = (_median(row, "dvlite") / row["limit_s"]
                               if row["limit_s"] and _median(row, "dvlite") is not None else None)
            row["misses"] = _misses(row, workload)
            rows.append(row)
        return rows


def _median(row: dict[str, Any], tool: str) -> float | None:
    return row[tool]["median_s"] if tool in row else None


def _ratio(row: dict[str, Any], tool: str, mine_of: str = "dvlite") -> float | None:
    mine, theirs = _median(row, mine_of), _median(row, tool)
    return mine / theirs if mine is not None and theirs else None


def _misses(row: dict[str, Any], workload: str) -> list[str] | None:
    """The targets this row misses; None when no target applies to it."""
    if "dvlite" not in row:
        return None
    misses, applies = [], False
    for step, workloads, max_dvc, max_limit in RATIO_TARGETS:
        if step != row["step"] or workload not in workloads:
            continue
        applies = applies or row["vs_dvc"] is not None or bool(max_limit and row["vs_limit"])
        if row["vs_dvc"] is not None and row["vs_dvc"] > max_dvc:
            misses.append(f"DVC x{row['vs_dvc']:.2f} > {max_dvc}")
        if max_limit and row["vs_limit"] is not None and row["vs_limit"] > max_limit:
            misses.append(f"limit x{row['vs_limit']:.2f} > {max_limit}")
    if row["step"] in WALL_TARGETS:
        applies = True
        if row["dvlite"]["median_s"] > WALL_TARGETS[row["step"]]:
            misses.append(f"{row['dvlite']['median_s']:.3f} s > {WALL_TARGETS[row['step']]} s")
    if "DVC" in row:
        applies = True
        if row["dvlite"]["peak_mib"] > row["DVC"]["peak_mib"]:
            misses.append("memory > DVC")
    return misses if applies else None


def _cell(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]], tools: list[str]) -> str:
    variants = [t for t in tools if t.startswith("dvlite-")] if "DVC" in tools else []
    head = ["data", "step", *[f"{t} s" for t in tools], "dvlite/DVC",
            *[f"{t}/DVC" for t in variants], "limit s",
            "dvlite/limit", *[f"{t} MiB" for t in ("dvlite", "DVC") if t in tools], "targets"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["group"], row["step"], *[_cell(_median(row, t)) for t in tools],
                 _cell(row["vs_dvc"], 2),
                 *[_cell(row["variants_vs_dvc"].get(t), 2) for t in variants],
                 _cell(row["limit_s"]), _cell(row["vs_limit"], 1),
                 *[_cell(row[t]["peak_mib"] if t in row else None, 0)
                   for t in ("dvlite", "DVC") if t in tools],
                 "" if row["misses"] is None else ("; ".join(row["misses"]) or "met")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def storage_table(rows: list[dict[str, Any]], tools: list[str]) -> str:
    """One line per step and tool: time, and what reached the remote (S3: on the wire)."""
    head = ["data", "step", "tool", "s", "uploaded MiB", "stored MiB", "objects",
            "S3 requests", "S3 sent MiB", "S3 received MiB", "peak MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        for tool in (t for t in tools if t in row):
            traffic = row[tool].get("traffic") or {}

            def mib(name: str, traffic: dict[str, Any] = traffic) -> str:
                value = traffic.get(name)
                return "" if value is None else f"{value / MIB / MIB:,.1f}"

            requests = traffic.get("requests")
            cells = [row["group"], row["step"], tool, _cell(_median(row, tool)),
                     mib("uploaded"), mib("stored"),
                     f"{traffic['objects']:,}" if traffic else "",
                     "" if requests is None else f"{requests:,}", mib("sent"),
                     mib("received"), _cell(row[tool]["peak_mib"], 0)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reference_table(references: dict[str, dict[str, float]]) -> str:
    names = list(dict.fromkeys(n for refs in references.values() for n in refs))
    lines = ["| data | " + " | ".join(f"{n} s" for n in names) + " |",
             "|" + "---|" * (len(names) + 1)]
    for workload, refs in references.items():
        lines.append(f"| {workload} | " + " | ".join(_cell(refs.get(n)) for n in names) + " |")
    return "\n".join(lines)


def machine(workdir: Path) -> dict[str, Any]:
    """CPU, cores, memory, the disk and file system under `workdir`, the OS and the load."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    disk = shutil.disk_usage(workdir)
    mount = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", str(workdir)],
                           capture_output=True, text=True, check=False).stdout.split()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / MIB / MIB, 1),
        "disk": {"device": mount[0] if mount else "?", "filesystem": mount[1] if mount else "?",
                 "options": mount[2] if len(mount) > 2 else "",
                 "size_gib": round(disk.total / 2**30), "free_gib": round(disk.free / 2**30)},
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
    }


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
