"""The binding against the header: every function bound and exported, constants equal to
the header's values, versions agree, statuses become IntdimError with the message."""
import re

import pytest

import intdim
from intdim import _lib


def header_functions(text):
    return set(re.findall(r"INTDIM_API\s[^;(]*?\b(intdim_\w+)\s*\(", text))


def header_constants(text):
    """INTDIM_X = <int> enum entries and #define INTDIM_X <int>[u] macros."""
    found = dict(re.findall(r"\b(INTDIM_\w+)\s*=\s*(-?\d+)", text))
    found.update(re.findall(r"#define\s+(INTDIM_\w+)\s+(-?\d+)u?\s", text))
    return {name: int(value) for name, value in found.items()}


def test_every_header_function_has_a_prototype(header_text):
    functions = header_functions(header_text)
    assert len(functions) > 50  # the parser found the API, not nothing
    assert functions - set(_lib.PROTOTYPES) == set()
    assert set(_lib.PROTOTYPES) - functions == set()


def test_every_function_is_exported_and_binds():
    assert intdim.missing_symbols() == []
    lib = _lib.lib()
    for name in _lib.PROTOTYPES:
        getattr(lib, name)  # sets restype/argtypes; raises if absent


def test_constants_match_the_header(header_text):
    constants = header_constants(header_text)
    assert "INTDIM_PROJ_FASTFOOD" in constants and "INTDIM_EINVAL" in constants
    for name, value in constants.items():
        assert intdim.constant(name) == value, name
    assert intdim.constant("PROJ_FASTFOOD") == constants["INTDIM_PROJ_FASTFOOD"]


def test_unknown_constant_is_a_key_error():
    with pytest.raises(KeyError, match="INTDIM_NO_SUCH_THING"):
        intdim.constant("NO_SUCH_THING")


def test_version_matches_header(header_text):
    version = re.search(r'#define INTDIM_VERSION_STRING "([^"]+)"', header_text).group(1)
    assert intdim.version() == version
    major, minor, patch = (int(x) for x in version.split("."))
    assert _lib.lib().intdim_version() == major * 10000 + minor * 100 + patch


def test_status_becomes_exception_with_message():
    with pytest.raises(intdim.IntdimError) as info:
        intdim.Projection("fastfood", 100, 200)  # d > D
    err = info.value
    assert err.status == intdim.constant("EINVAL")
    assert err.name == "INTDIM_EINVAL"
    assert err.message  # the library's detailed message, not empty
    assert err.message in str(err)
    assert intdim.strerror(err.status) in str(err)


def test_unknown_kind_and_parameter_names_raise_value_error():
    with pytest.raises(ValueError, match="kind"):
        intdim.Projection("nonsense", 100, 10)
    with intdim.Projection("dense", 100, 10) as p:
        with pytest.raises(ValueError, match="parameter"):
            p.set("no_such_param", 1)


def run_python(code, **env):
    import os
    import subprocess
    import sys
    full_env = dict(os.environ, **env)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full_env["PYTHONPATH"] = package_dir
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=60)


def test_intdim_library_variable_is_obeyed():
    bad = run_python("import intdim; intdim.version()", INTDIM_LIBRARY="/nonexistent/lib.so")
    assert bad.returncode != 0 and "INTDIM_LIBRARY" in bad.stderr
    good = run_python("import intdim; print(intdim.library_path())",
                      INTDIM_LIBRARY=_lib.library_path())
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == _lib.library_path()


def test_older_library_is_refused():
    # A shared object that is not this API's libintdim (here numpy's own extension module:
    # none of our functions) is refused when loaded, before a call could pass arguments in
    # an older order.
    import numpy.core._multiarray_umath as other
    old = run_python("import intdim; intdim.version()", INTDIM_LIBRARY=other.__file__)
    assert old.returncode != 0 and "older than this binding" in old.stderr


def test_handles_left_open_are_freed_at_exit():
    # Objects never closed (a trainer borrowing a projection) must be destroyed in a safe
    # order at interpreter exit: no crash, exit status 0.
    code = ("import numpy as np, intdim\n"
            "p = intdim.Projection('fastfood', 100, 10)\n"
            "theta = np.zeros(100, np.float32)\n"
            "def g(step, th, gr):\n"
            "    gr[:] = th\n"
            "    return 0.0\n"
            "t = intdim.Trainer(p, theta, g)\n"
            "t.step()\n"
            "s = intdim.Search(100)\n")
    result = run_python(code, INTDIM_LIBRARY=_lib.library_path())
    assert result.returncode == 0, result.stderr
