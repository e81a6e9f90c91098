import pytest

from cppgunicorn import _app_loader


@pytest.fixture
def apps(tmp_path, monkeypatch):
    (tmp_path / "unit_app.py").write_text(
        "def application(e, s): pass\n"
        "def app(e, s): pass\n"
        "def make(name, key=0):\n"
        "    def made(e, s): pass\n"
        "    made.args = (name, key)\n"
        "    return made\n"
        "not_callable = 1\n"
        "nothing = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_each_uri_form_loads(apps):
    import unit_app
    assert _app_loader.load("unit_app") is unit_app.application
    assert _app_loader.load("unit_app:app") is unit_app.app
    assert _app_loader.load("unit_app:make('x', key=2)").args == ("x", 2)


@pytest.mark.parametrize("uri, message", [
    (":app", "No application module specified."),
    ("unit_app_missing:app", "No module named 'unit_app_missing'"),
    ("unit_app.py", "Failed to find application, did you mean 'unit_app:application'?"),
    ("unit_app:missing", "Failed to find attribute 'missing' in 'unit_app'."),
    ("unit_app:make(", "Failed to parse 'make(' as an attribute name or function call."),
    ("unit_app:make(x)", "Failed to parse arguments as literal values: 'make(x)'"),
    ("unit_app:not_callable", "Application object must be callable: 'not_callable' in 'unit_app' is int."),
    ("unit_app:nothing", "Failed to find application object: 'nothing'"),
])
def test_each_mistake_is_one_line_naming_it(apps, uri, message):
    with pytest.raises(_app_loader.AppLoadError) as caught:
        _app_loader.load(uri)
    assert str(caught.value) == message
