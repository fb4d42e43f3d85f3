from __future__ import annotations

from tests.helpers import TmpRepo


def test_add_writes_pointer(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a.csv": "x,y\n"}})
    result = tmp_repo.dvl_add("data")
    assert result.stored[0].files == 1
    assert (tmp_repo.root / "data.dvl").read_text().startswith("# dvlite pointer")
