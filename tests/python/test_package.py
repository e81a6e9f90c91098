import sys

import cppgunicorn


def test_the_package_imports_without_its_extension_module():
    # The executable of a CMake build loads these modules from the source
    # tree, where no cppgunicorn._server exists.
    from cppgunicorn import _app_loader, _config, _hooks, _logging, _reloader  # noqa: F401
    assert "cppgunicorn._server" not in sys.modules
    assert callable(cppgunicorn.run)
