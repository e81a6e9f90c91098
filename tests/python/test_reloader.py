import os

from cppgunicorn import _reloader


def test_a_changed_watched_file_is_reported_once_its_mtime_moves(tmp_path):
    watched = tmp_path / "extra.txt"
    watched.write_text("one")
    watch = _reloader.Watch([str(watched), str(tmp_path / "*.cfg")])
    assert watch.check() == ""
    later = os.stat(watched).st_mtime + 10
    os.utime(watched, (later, later))
    assert watch.check() == str(watched)


def test_a_glob_pattern_watches_the_files_it_matches(tmp_path):
    cfg = tmp_path / "a.cfg"
    cfg.write_text("x")
    watch = _reloader.Watch([str(tmp_path / "*.cfg")])
    later = os.stat(cfg).st_mtime + 10
    os.utime(cfg, (later, later))
    assert watch.check() == str(cfg)
