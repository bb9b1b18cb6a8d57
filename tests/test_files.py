"""The one atomic writer: all or nothing, the usual file mode, concurrent writers both succeed."""

import os
import stat
import threading

import pytest

from esc_course.files import atomic_write, file_mode, write_text


def test_write_text_creates_parents_with_the_usual_mode(tmp_path):
    path = write_text(tmp_path / "a" / "b.txt", "안녕 hello")
    assert path.read_text(encoding="utf-8") == "안녕 hello"
    assert stat.S_IMODE(os.stat(path).st_mode) == file_mode() != 0o600
    assert not list(path.parent.glob(".*.tmp"))


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = write_text(tmp_path / "x.json", "old")
    with pytest.raises(RuntimeError), atomic_write(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert not list(tmp_path.glob(".*.tmp"))


def test_two_writers_of_one_path_both_succeed(tmp_path):
    path, errors = tmp_path / "w.bin", []
    barrier = threading.Barrier(4)

    def writer(k):
        try:
            with atomic_write(path) as tmp:
                tmp.write_bytes(bytes([k]) * 1000)
                barrier.wait(timeout=10)  # all four temporary files exist at once
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = path.read_bytes()
    assert len(data) == 1000 and len(set(data)) == 1
