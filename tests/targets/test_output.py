"""The output folder is written atomically: all files or nothing, never a half-replaced folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from egress import output
from egress.errors import OutputError
from egress.output import MARKER, write_outputs


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_writes_every_file_with_the_marker(tmp_path: Path):
    out = tmp_path / "out"
    write_outputs({"a.json": "{}\n", "nested/b.tf": "x\n"}, out)
    assert tree(out) == {
        MARKER: "written by egress compile\n",
        "a.json": "{}\n",
        "nested/b.tf": "x\n",
    }
    assert list(tmp_path.iterdir()) == [out]  # no temporary folder left behind


def test_replaces_a_previous_output_wholesale(tmp_path: Path):
    out = tmp_path / "out"
    write_outputs({"old.json": "1\n", "keep.json": "1\n"}, out)
    write_outputs({"keep.json": "2\n"}, out)
    assert tree(out) == {MARKER: "written by egress compile\n", "keep.json": "2\n"}
    assert list(tmp_path.iterdir()) == [out]


def test_replaces_without_atomic_exchange_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    write_outputs({"a": "1\n"}, out)
    write_outputs({"b": "2\n"}, out)
    assert tree(out) == {MARKER: "written by egress compile\n", "b": "2\n"}
    assert list(tmp_path.iterdir()) == [out]


def test_refuses_to_replace_a_folder_egress_did_not_write(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("precious\n")
    with pytest.raises(OutputError, match="was not written by egress"):
        write_outputs({"a": "1\n"}, tmp_path)
    assert tree(tmp_path) == {"notes.txt": "precious\n"}


def test_an_empty_existing_folder_is_fine(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    write_outputs({"a": "1\n"}, out)
    assert tree(out)["a"] == "1\n"


def test_refuses_a_file_in_the_way(tmp_path: Path):
    (tmp_path / "out").write_text("file\n")
    with pytest.raises(OutputError, match="is not a folder"):
        write_outputs({"a": "1\n"}, tmp_path / "out")


def test_a_failure_mid_write_leaves_the_old_output_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "out"
    write_outputs({"a.json": "old\n"}, out)
    real_write_tree = output._write_tree

    def write_half_then_fail(root: Path, files: dict[str, str]) -> None:
        real_write_tree(root, dict(list(files.items())[:1]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "_write_tree", write_half_then_fail)
    with pytest.raises(OutputError, match="No space left on device") as raised:
        write_outputs({"a.json": "new\n", "b.json": "new\n"}, out)
    assert "nothing was changed there" in raised.value.message
    assert tree(out) == {MARKER: "written by egress compile\n", "a.json": "old\n"}
    assert list(tmp_path.iterdir()) == [out]


def test_a_failure_on_first_write_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def fail(root: Path, files: dict[str, str]) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(output, "_write_tree", fail)
    with pytest.raises(OutputError):
        write_outputs({"a.json": "x\n"}, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", MARKER])
def test_paths_must_stay_inside_the_folder(tmp_path: Path, bad: str):
    with pytest.raises(ValueError, match="must be relative"):
        write_outputs({bad: "x"}, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_output_folder_is_written_through(tmp_path: Path):
    real = tmp_path / "real"
    write_outputs({"a": "1\n"}, real)
    (tmp_path / "link").symlink_to(real)
    write_outputs({"b": "2\n"}, tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert tree(real) == {MARKER: "written by egress compile\n", "b": "2\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
