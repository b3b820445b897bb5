"""pytest setup: import the package from this checkout and check that a libintdim is there.

Nothing is built here. The library comes from INTDIM_LIBRARY (what scripts/run-tests.sh
sets) or, failing that, from a build directory of this checkout (../../build*/lib).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/ -> import intdim

from intdim import _lib  # noqa: E402

HEADER = os.path.join(os.path.dirname(os.path.dirname(HERE)), "include", "intdim.h")


def pytest_configure(config):
    try:
        path = _lib.library_path()
    except OSError as exc:
        pytest.exit(f"libintdim not found ({exc}). Build it (meson setup build && ninja -C "
                    "build) or set INTDIM_LIBRARY=<build>/lib/libintdim.so.0", returncode=2)
    config._intdim_path = path


def pytest_report_header(config):
    return f"libintdim: {getattr(config, '_intdim_path', '?')}"


@pytest.fixture
def header_text():
    with open(HEADER) as f:
        return f.read()


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt during the test, whatever this process inherited: a
    shell starts background jobs with SIGINT ignored, and Python then never installs its
    handler, so a test that sends itself SIGINT would see nothing (as it did when CI ran
    in the background)."""
    import signal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
