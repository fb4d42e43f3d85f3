"""The stage graph: an edge runs from the stage writing an out to each stage depending on it.

A dep matches an out when the paths are equal, the dep is inside the out's
folder, or the out is inside the dep's folder. The graph is refused when two
stages write one path, one out lies inside another, an out is also tracked by
a ``.dvl`` pointer, or the stages form a cycle. ``to_dot`` and ``to_mermaid`` draw it.
"""

from __future__ import annotations

import difflib
import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import PipelineError, PipelineGraphError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dvlite.pipeline.stage import Stage


def overlaps(a: str, b: str) -> bool:
    """True when one repo path is the other or lies inside it."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@dataclass(frozen=True, slots=True)
class Graph:
    stages: Mapping[str, Stage]
    upstream: Mapping[str, frozenset[str]]  # stage -> the stages whose outs it depends on

    def downstream(self, name: str) -> frozenset[str]:
        return frozenset(n for n, ups in self.upstream.items() if name in ups)

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """``names`` and every stage they depend on, however far up."""
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.upstream[name])
        return seen


def build(stages: Mapping[str, Stage], *, tracked: Iterable[str] = ()) -> Graph:
    """Check the stages' outs and build their graph; ``tracked`` are the repo paths of data
    tracked by ``.dvl`` pointers."""
    outs = sorted((path, name) for name, stage in stages.items() for path in stage.out_paths)
    _check_outs(outs)
    for tracked_path in sorted(tracked):
        for path, name in outs:
            if overlaps(path, tracked_path):
                raise PipelineGraphError(
                    f"stage `{name}` writes `{path}`, which overlaps `{tracked_path}`, "
                    "already tracked by a .dvl pointer",
                    hint=f"stop tracking it (remove `{tracked_path}.dvl`) and let the stage "
                    "produce it, or change the stage's outs",
                )
    upstream: dict[str, frozenset[str]] = {}
    for name, stage in stages.items():
        ups: set[str] = set()
        for dep in stage.dep_paths:
            for path, writer in outs:
                if overlaps(dep, path):
                    if writer == name:
                        raise PipelineGraphError(
                            f"stage `{name}` forms a cycle with itself: "
                            f"its dep `{dep}` overlaps its own out `{path}`"
                        )
                    ups.add(writer)
        upstream[name] = frozenset(ups)
    graph = Graph(stages, upstream)
    _check_acyclic(graph)
    return graph


def _check_outs(outs: list[tuple[str, str]]) -> None:
    # Sorted by path, so an out inside another comes after it, though maybe not right after
    # ("a", "a-b", "a/c"); compare each with the outs above it that are its prefixes.
    for i, (path, name) in enumerate(outs):
        for other, other_name in outs[:i]:
            if other == path:
                if other_name == name:
                    continue  # the stage parser already refuses this; be safe
                first, second = sorted((name, other_name))
                raise PipelineGraphError(
                    f"stages `{first}` and `{second}` both write `{path}`",
                    hint="an out must come from exactly one stage",
                )
            if path.startswith(other + "/"):
                raise PipelineGraphError(
                    f"out `{path}` of stage `{name}` is inside out `{other}` of stage "
                    f"`{other_name}`",
                    hint="outs may not overlap; list the folder or the files in it, not both",
                )


def _check_acyclic(graph: Graph) -> None:
    left = dict(graph.upstream)
    progress = True
    while progress:
        progress = False
        for name in [n for n, ups in left.items() if not ups & left.keys()]:
            del left[name]
            progress = True
    if not left:
        return
    # Every stage left has an upstream stage also left: walk upstream until one repeats.
    path = [min(left)]
    while True:
        step = min(left[path[-1]] & left.keys())
        if step in path:
            cycle = [*path[path.index(step) :], step]
            cycle.reverse()  # upstream walk; show the direction data flows
            raise PipelineGraphError(
                "stages form a cycle: " + " -> ".join(f"`{n}`" for n in cycle),
                hint="an out cannot feed, however indirectly, the stage that writes it",
            )
        path.append(step)


def order(
    stages: Mapping[str, Stage],
    targets: Iterable[str] | None = None,
    *,
    tracked: Iterable[str] = (),
) -> list[str]:
    """Names of ``targets`` (all stages when None) and the stages upstream of them, each
    after everything it depends on; ties go by name, so the order is always the same."""
    graph = build(stages, tracked=tracked)
    return topological(graph, targets)


def topological(graph: Graph, targets: Iterable[str] | None = None) -> list[str]:
    if targets is None:
        wanted = set(graph.stages)
    else:
        wanted_targets = list(targets)
        for target in wanted_targets:
            if target not in graph.stages:
                close = difflib.get_close_matches(target, list(graph.stages), n=1)
                raise PipelineError(
                    f"no stage named `{target}` in the pipeline",
                    hint=f"did you mean `{close[0]}`?" if close else None,
                )
        wanted = graph.ancestors(wanted_targets)
    waiting = {n: len(graph.upstream[n]) for n in wanted}
    ready = [n for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    downstream: dict[str, list[str]] = {n: [] for n in wanted}
    for name in wanted:
        for up in graph.upstream[name]:
            downstream[up].append(name)
    result: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        result.append(name)
        for down in downstream[name]:
            waiting[down] -= 1
            if waiting[down] == 0:
                heapq.heappush(ready, down)
    assert len(result) == len(wanted), "build() refuses cycles"
    return result


def to_dot(nodes: Sequence[tuple[str, Sequence[str]]]) -> str:
    """Graphviz source for stages in run order, each with its upstream stages; edges point
    downstream, the way data flows."""
    lines = ["digraph pipeline {"]
    lines.extend(f"    {_dot_id(name)};" for name, _ in nodes)
    lines.extend(f"    {_dot_id(up)} -> {_dot_id(name)};" for name, ups in nodes for up in ups)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_mermaid(nodes: Sequence[tuple[str, Sequence[str]]]) -> str:
    """A Mermaid flowchart of the same graph. Nodes get plain ids (s1, s2, ...) and the stage
    name as their label: a name such as `end` or `a-b` is not a safe Mermaid id."""
    ids = {name: f"s{i}" for i, (name, _) in enumerate(nodes, 1)}
    lines = ["flowchart TD"]
    lines.extend(f'    {ids[name]}["{name.replace(chr(34), "#quot;")}"]' for name, _ in nodes)
    lines.extend(f"    {ids[up]} --> {ids[name]}" for name, ups in nodes for up in ups)
    return "\n".join(lines) + "\n"
