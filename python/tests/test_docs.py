"""What docs/python.md and python/examples/ claim: the documented example runs and reaches a
d90, and fmnist_torch.py's defaults are the C example's --quick protocol. Also that docs/api.md
names every public function of the header."""
import contextlib
import importlib.util
import io
import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def docs_example():
    """The Python block under '### Example' of docs/python.md."""
    with open(os.path.join(ROOT, "docs", "python.md")) as f:
        text = f.read()
    section = text[text.index("### Example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_docs_search_example_reaches_d90(tmp_path, monkeypatch):
    # The example's eval metric must be higher-is-better with a positive baseline: with
    # -norm the baseline was negative and d90 could never be reached.
    monkeypatch.chdir(tmp_path)  # it writes search.journal
    out = io.StringIO()
    namespace = {"__name__": "docs_example"}
    with contextlib.redirect_stdout(out):
        exec(compile(docs_example(), "docs/python.md", "exec"), namespace)
    printed = out.getvalue()
    assert "reached=True" in printed
    match = re.search(r"d90 = (\d+)", printed)
    assert match and 0 < int(match.group(1)) < namespace["D"]
    assert re.search(r"baseline=[0-9.]+", printed)  # positive, as the docs require
    assert (tmp_path / "search.journal").exists()


def header_functions(text):
    """The INTDIM_API function names of a header (the regex of test_lib.py)."""
    return set(re.findall(r"INTDIM_API\s[^;(]*?\b(intdim_\w+)\s*\(", text))


def test_api_reference_names_every_header_function():
    with open(os.path.join(ROOT, "include", "intdim.h")) as f:
        functions = header_functions(f.read())
    assert len(functions) > 50  # the parser found the API, not nothing
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        reference = f.read()
    # as a whole word followed by "(": intdim_proj_d must not pass on intdim_proj_destroy's text
    missing = sorted(name for name in functions
                     if not re.search(r"\b" + name + r"\s*\(", reference))
    assert missing == []


def c_preset(text, name):
    """Scalar assignments and static arrays of a preset function of fmnist.c."""
    body = re.search(r"static void " + name + r"\(protocol \*p\)\n\{(.*?)\n\}\n", text,
                     re.S).group(1)
    scalars = {k: v for k, v in re.findall(r"p->(\w+) = ([0-9.e+-]+);", body)}
    arrays = {k: [float(x) for x in v.split(",")]
              for k, v in re.findall(r"static const \w+ (\w+)\[\] = \{([^}]*)\};", body)}
    return scalars, arrays


def test_fmnist_torch_defaults_are_the_c_quick_protocol():
    pytest.importorskip("torch")
    with open(os.path.join(ROOT, "examples", "fashion_mnist", "fmnist.c")) as f:
        text = f.read()
    common, _ = c_preset(text, "preset_common")
    quick, arrays = c_preset(text, "preset_quick")
    assert "preset_common(p);" in text[text.index("static void preset_quick"):]
    path = os.path.join(ROOT, "python", "examples", "fmnist_torch.py")
    spec = importlib.util.spec_from_file_location("fmnist_torch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.make_parser().parse_args([])
    assert [float(x) for x in args.lrs.split(",")] == arrays["sub_lrs"]
    assert [float(x) for x in args.full_lrs.split(",")] == arrays["full_lrs"]
    assert [int(x) for x in args.ds.split(",")] == [int(x) for x in arrays["ds"]]
    assert args.steps == int(quick["steps"])
    assert args.pool == int(quick["n_pool"])
    assert args.val == int(quick["n_val"])
    assert args.train_eval == int(quick["n_train_eval"])
    assert args.batch == int(common["batch"])
    assert args.seeds == int(common["n_seeds"])
    assert args.base_seed == int(common["base_seed"])
    assert args.init_seed == int(common["init_seed"])


README_C_STUBS = """
/* loss = |theta - c|^2 / 2 for a fixed unstructured c */
static float target(int i) { return (float)((i * 7919) % 13) / 6.0f - 1.0f; }
int my_loss_and_grad(void *model, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)model, (void)step;
    *loss = 0.0;
    for (int i = 0; i < 3000; i++) {
        grad[i] = theta[i] - target(i);
        *loss += 0.5 * grad[i] * grad[i];
    }
    return 0;
}
/* minus the squared distance to c relative to |c|^2: -1 at theta = 0 */
int my_accuracy(void *model, const float *theta, double *metric)
{
    double dist = 0.0, norm = 0.0;
    (void)model;
    for (int i = 0; i < 3000; i++) {
        dist += (theta[i] - target(i)) * (theta[i] - target(i));
        norm += target(i) * target(i);
    }
    *metric = -dist / norm;
    return 0;
}
int main(void)
{
    static float theta[3000];
    double acc = -1.0;
    int rc = train_subspace(theta, 3000, NULL, &acc);
    printf("%d %g\\n", rc, acc);
    return rc;
}
"""


def test_readme_c_example_compiles_and_runs(tmp_path):
    # README's "Using it" block, completed with a host, builds as strict C99 and trains.
    import shutil
    import subprocess
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    from intdim import _lib
    with open(os.path.join(ROOT, "README.md")) as f:
        block = re.search(r"## Using it\n\n```c\n(.*?)```", f.read(), re.S).group(1)
    src = tmp_path / "readme.c"
    src.write_text(block + README_C_STUBS)
    exe = tmp_path / "readme"
    lib = _lib.library_path()
    subprocess.run([cc, "-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror",
                    "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe), lib,
                    "-Wl,-rpath," + os.path.dirname(lib)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == "0"
    # from -1 at theta = 0 to about the best a random 1000-dimensional subspace of 3000
    # allows, which leaves 2/3 of |c|^2
    assert -0.8 < float(out[1]) < -0.6
