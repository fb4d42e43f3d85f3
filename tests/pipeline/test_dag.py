"""The stage graph: edges from outs to deps, refused graphs, deterministic order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import PipelineError, PipelineGraphError
from dvlite.pipeline.dag import build, order, overlaps
from dvlite.pipeline.stage import Out, Stage


def stage(name: str, deps: tuple[str, ...] = (), outs: tuple[str, ...] = (),
          metrics: tuple[str, ...] = (), wdir: str = ".") -> Stage:
    return Stage(name, "true", deps=deps, outs=tuple(Out(o) for o in outs), metrics=metrics,
                 wdir=wdir)


def pipeline(*stages: Stage) -> dict[str, Stage]:
    return {s.name: s for s in stages}


def test_overlaps() -> None:
    assert overlaps("a", "a")
    assert overlaps("a/b", "a")
    assert overlaps("a", "a/b")
    assert not overlaps("a-b", "a")
    assert not overlaps("ab", "a")


def test_chain_is_ordered_by_data_not_by_name() -> None:
    stages = pipeline(
        stage("a_train", deps=("data/prepared",), outs=("model.pkl",)),
        stage("b_prepare", deps=("data/raw",), outs=("data/prepared",)),
        stage("c_eval", deps=("model.pkl",), metrics=("metrics.json",)),
        stage("d_report", deps=("metrics.json",)),
    )
    assert order(stages) == ["b_prepare", "a_train", "c_eval", "d_report"]


def test_ties_go_by_name() -> None:
    stages = pipeline(stage("z", outs=("z",)), stage("m", outs=("m",)), stage("a", outs=("a",)),
                      stage("all", deps=("a", "m", "z")))
    assert order(stages) == ["a", "m", "z", "all"]


def test_dep_inside_out_folder_and_out_inside_dep_folder() -> None:
    stages = pipeline(
        stage("use_file", deps=("data/prepared/train.csv",)),
        stage("prepare", outs=("data/prepared",)),
        stage("use_folder", deps=("data",)),
        stage("unrelated", deps=("data/prepared-old",)),
    )
    graph = build(stages)
    assert graph.upstream["use_file"] == {"prepare"}
    assert graph.upstream["use_folder"] == {"prepare"}
    assert graph.upstream["unrelated"] == frozenset()
    assert graph.downstream("prepare") == {"use_file", "use_folder"}
    assert order(stages) == ["prepare", "unrelated", "use_file", "use_folder"]


def test_wdir_is_part_of_the_path() -> None:
    stages = pipeline(stage("b", deps=("out.txt",), wdir="sub"), stage("a", outs=("sub/out.txt",)),
                      stage("c", deps=("out.txt",)))
    graph = build(stages)
    assert graph.upstream["b"] == {"a"}
    assert graph.upstream["c"] == frozenset()


def test_targets_bring_only_their_upstream() -> None:
    stages = pipeline(
        stage("prepare", outs=("p",)),
        stage("train", deps=("p",), outs=("m",)),
        stage("eval", deps=("m",)),
        stage("other", deps=("p",)),
        stage("lonely"),
    )
    assert order(stages, ["train"]) == ["prepare", "train"]
    assert order(stages, ["eval", "lonely"]) == ["lonely", "prepare", "train", "eval"]
    assert order(stages, []) == []


def test_unknown_target() -> None:
    stages = pipeline(stage("train"))
    with pytest.raises(PipelineError, match="no stage named `trian`") as info:
        order(stages, ["trian"])
    assert info.value.hint == "did you mean `train`?"
    assert not isinstance(info.value, PipelineGraphError)


def test_two_stages_writing_one_out() -> None:
    stages = pipeline(stage("b", outs=("model.pkl",)), stage("a", metrics=("model.pkl",)))
    with pytest.raises(PipelineGraphError, match=r"stages `a` and `b` both write `model\.pkl`"):
        build(stages)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (pipeline(stage("a", outs=("data",)), stage("b", outs=("data/x",))),
         "out `data/x` of stage `b` is inside out `data` of stage `a`"),
        (pipeline(stage("a", outs=("data", "data-b", "data/x"))),
         "out `data/x` of stage `a` is inside out `data` of stage `a`"),
        (pipeline(stage("a", outs=("d",), wdir="w"), stage("b", metrics=("w/d/m.json",))),
         "out `w/d/m.json` of stage `b` is inside out `w/d`"),
    ],
)
def test_overlapping_outs(stages: dict[str, Stage], message: str) -> None:
    with pytest.raises(PipelineGraphError, match=message):
        build(stages)


@pytest.mark.parametrize("tracked", ["data/raw", "data", "data/raw/a.csv"])
def test_out_tracked_by_a_pointer(tracked: str) -> None:
    stages = pipeline(stage("a", outs=("data/raw",)))
    with pytest.raises(PipelineGraphError, match=f"stage `a` writes `data/raw`.*`{tracked}`.*dvl"):
        build(stages, tracked=[tracked])
    with pytest.raises(PipelineGraphError):
        order(stages, tracked=[tracked])


def test_tracked_paths_elsewhere_are_fine() -> None:
    stages = pipeline(stage("a", deps=("data/raw",), outs=("data/raw-clean",)))
    assert order(stages, tracked=["data/raw"]) == ["a"]


def test_cycle_names_its_stages() -> None:
    stages = pipeline(
        stage("a", deps=("c.out",), outs=("a.out",)),
        stage("b", deps=("a.out",), outs=("b.out",)),
        stage("c", deps=("b.out",), outs=("c.out",)),
        stage("d", deps=("c.out",)),
    )
    with pytest.raises(PipelineGraphError, match=r"cycle: `a` -> `b` -> `c` -> `a`"):
        build(stages)


def test_stage_depending_on_its_own_out_folder() -> None:
    stages = pipeline(stage("a", deps=("data/x",), outs=("data",)))
    with pytest.raises(PipelineGraphError, match="`a` forms a cycle with itself"):
        order(stages)


@st.composite
def acyclic_pipelines(draw: st.DrawFn) -> tuple[dict[str, Stage], list[tuple[int, int]]]:
    """Stages s0..sn; an edge i -> j only for i < j, so the graph is acyclic; names shuffled
    so that the order cannot come from the names."""
    n = draw(st.integers(min_value=2, max_value=9))
    names = draw(st.permutations([f"s{i}" for i in range(n)]))
    edges = draw(st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1]),
        unique=True, max_size=20,
    ))
    in_folder = draw(st.booleans())  # deps on a file inside the out folder, or on the folder
    stages = {}
    for j in range(n):
        deps = tuple(f"out{i}/f.csv" if in_folder else f"out{i}" for i, k in edges if k == j)
        stages[names[j]] = stage(names[j], deps=deps, outs=(f"out{j}",))
    return stages, edges


@given(acyclic_pipelines())
def test_random_acyclic_order_respects_every_edge(
    case: tuple[dict[str, Stage], list[tuple[int, int]]],
) -> None:
    stages, edges = case
    names = {s.outs[0].path: s.name for s in stages.values()}
    result = order(stages)
    assert sorted(result) == sorted(stages)
    assert order(dict(reversed(list(stages.items())))) == result  # deterministic
    for i, j in edges:
        assert result.index(names[f"out{i}"]) < result.index(names[f"out{j}"])


@given(acyclic_pipelines(), st.data())
def test_random_back_edge_makes_a_named_cycle(
    case: tuple[dict[str, Stage], list[tuple[int, int]]], data: st.DataObject,
) -> None:
    stages, edges = case
    names = {s.outs[0].path: s.name for s in stages.values()}
    # add a back edge j -> i to a drawn edge i -> j (or to a new one when none was drawn)
    i, j = data.draw(st.sampled_from(edges or [(0, 1)]))
    upstream, downstream = names[f"out{i}"], names[f"out{j}"]
    stages = dict(stages)
    old = stages[upstream]
    stages[upstream] = stage(upstream, deps=(*old.deps, f"out{j}"), outs=(f"out{i}",))
    if (i, j) not in edges:  # the default edge was not there: add it too
        old_down = stages[downstream]
        stages[downstream] = stage(downstream, deps=(*old_down.deps, f"out{i}"),
                                   outs=(f"out{j}",))
    with pytest.raises(PipelineGraphError, match="stages form a cycle") as info:
        order(stages)
    message = info.value.message
    named = [n for n in stages if f"`{n}`" in message]
    assert upstream in named or downstream in named
    chain = message.split(": ", 1)[1].split(" -> ")
    assert chain[0] == chain[-1]
    # each step of the named cycle is a real edge: the next stage depends on this one's out
    graph_up = {n: set() for n in stages}
    for a in stages.values():
        for b in stages.values():
            if any(overlaps(d, o) for d in a.dep_paths for o in b.out_paths):
                graph_up[a.name].add(b.name)
    steps = [c.strip("`") for c in chain]
    for before, after in itertools.pairwise(steps):
        assert before in graph_up[after]
