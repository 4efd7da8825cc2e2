import pytest

from know_core.common.fsio import atomic_write, write_json


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip() == '{\n  "v": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_non_finite_json_is_refused(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()
