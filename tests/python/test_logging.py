import json
import logging

import pytest

from cppgunicorn import _logging


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).handlers.clear()


def test_nothing_set_configures_nothing():
    assert _logging.setup_logging(None, "", "") is False


def test_a_dict_updates_gunicorns_defaults(capsys):
    # Its formatter replaces gunicorn's; the loggers and handlers stay.
    custom = {"formatters": {"generic": {"format": "DICT %(levelname)s %(message)s"}}}
    assert _logging.setup_logging(custom, "", "") is True
    _logging.log_error(logging.INFO, "an error-log line")
    _logging.log_access("an access line")
    out, err = capsys.readouterr()
    assert "DICT INFO an error-log line" in err
    assert "DICT INFO an access line" in out


def test_a_json_file_is_read(tmp_path, capsys):
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"formatters": {"generic": {"format": "JSON %(message)s"}}}))
    assert _logging.setup_logging(None, str(path), "") is True
    _logging.log_error(logging.ERROR, "line")
    assert "JSON line" in capsys.readouterr().err


@pytest.mark.parametrize("args, setting", [
    ((None, "/no/such/file.json", ""), "logconfig_json"),
    ((None, "", "/no/such/file.ini"), "logconfig"),
])
def test_a_missing_file_names_the_setting(args, setting):
    with pytest.raises(ValueError, match="Invalid value for %s: '/no/such/file" % setting):
        _logging.setup_logging(*args)
