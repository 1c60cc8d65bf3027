"""The public Sandbox API: one persistent kernel, everything a cell produces captured."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dsassist.sandbox import Sandbox

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    """One kernel shared by the tests that do not kill or restart it."""
    with Sandbox(tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox


def test_state_persists_across_cells(sb):
    first = sb.execute("base_value = 20", timeout=30)
    assert first.ok and first.error is None
    second = sb.execute("answer = base_value + 22\nprint(answer)", timeout=30)
    assert second.ok
    assert second.stdout == "42\n"
    third = sb.execute("answer * 2", timeout=30)  # an expression's value is an output
    assert [(o.mime, o.text) for o in third.outputs] == [("text/plain", "84")]


def test_stdout_and_stderr_are_captured_separately_per_cell(sb):
    r = sb.execute(
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nprint('more')",
        timeout=30,
    )
    assert r.ok
    assert r.stdout == "to stdout\nmore\n"
    assert r.stderr == "to stderr\n"
    quiet = sb.execute("silent_value = 1", timeout=30)
    assert quiet.stdout == "" and quiet.stderr == ""  # nothing leaks from the previous cell


def test_duration_is_measured(sb):
    r = sb.execute("import time\ntime.sleep(0.3)", timeout=30)
    assert r.ok
    assert 0.3 <= r.duration_s < 10


def test_exception_reports_name_value_traceback_and_kernel_keeps_working(sb):
    code = "print('before the error')\ndef explode():\n    raise ValueError('bad input 42')\nexplode()"
    r = sb.execute(code, timeout=30)
    assert not r.ok
    assert r.stdout == "before the error\n"
    assert r.error is not None
    assert r.error.name == "ValueError"
    assert r.error.value == "bad input 42"
    text = "\n".join(r.error.traceback)
    assert "explode" in text and "ValueError" in text
    assert "\x1b[" not in text  # colour codes are stripped
    after = sb.execute("print('still alive')", timeout=30)
    assert after.ok and after.stdout == "still alive\n"
    # the function defined before the error is still there
    again = sb.execute("explode", timeout=30)
    assert again.ok and again.outputs and "explode" in again.outputs[0].text


def test_plot_becomes_png_file_under_workdir(sb):
    code = "import matplotlib.pyplot as plt\nplt.plot([0, 1, 2], [2, 0, 1])\nplt.title('a plot')\nplt.show()"
    r = sb.execute(code, timeout=60)
    assert r.ok, r.error
    images = [o for o in r.outputs if o.mime == "image/png"]
    assert len(images) == 1
    rel = Path(images[0].path)
    assert not rel.is_absolute()  # relative to the work folder
    full = (sb.workdir / rel).resolve()
    assert full.is_relative_to(sb.workdir)
    assert full.is_file()
    assert full.read_bytes().startswith(PNG_MAGIC)


def test_published_record_arrives_as_structured_output(sb):
    code = (
        "from dsassist.templates.tabular.toolkit import publish\n"
        "publish('metrics', {'metric': 'rmse', 'folds': [1.0, 2.0], 'mean': 1.5})\n"
        "publish('profile', {'rows': 3})\n"
        "print('published')"
    )
    r = sb.execute(code, timeout=60)
    assert r.ok, r.error
    assert r.stdout == "published\n"  # the record is not printed as text
    mimes = [o.mime for o in r.outputs]
    assert mimes == ["application/vnd.dsassist.metrics+json", "application/vnd.dsassist.profile+json"]
    assert r.outputs[0].data == {"metric": "rmse", "folds": [1.0, 2.0], "mean": 1.5}
    assert r.records("metrics") == [{"metric": "rmse", "folds": [1.0, 2.0], "mean": 1.5}]
    assert r.records("profile") == [{"rows": 3}]
    assert r.records("drivers") == []


def test_timeout_interrupts_quickly_and_namespace_survives(sb):
    assert sb.execute("kept_before_timeout = 'still here'", timeout=30).ok
    start = time.perf_counter()
    r = sb.execute("import time\ntime.sleep(30)", timeout=1)
    elapsed = time.perf_counter() - start
    assert not r.ok
    assert r.error is not None and r.error.name == "Timeout"
    assert elapsed < 4, f"a 1 s timeout took {elapsed:.1f} s"
    after = sb.execute("print(kept_before_timeout)", timeout=30)
    assert after.ok, after.error
    assert after.stdout == "still here\n"


def test_state_lists_variables_and_imports_without_underscore_names(sb):
    code = (
        "import numpy as np\n"
        "import pandas as pd\n"
        "frame = pd.DataFrame({'age': [1.0, 2.0, 3.0], 'city': ['a', 'b', 'c']})\n"
        "numbers = [1, 2, 3]\n"
        "count = 7\n"
        "settings = {'alpha': 1, 'beta': 2}\n"
        "matrix = np.zeros((4, 5))\n"
        "_private = 1\n"
        "__dunder = 2\n"
        "def helper():\n"
        "    return 1\n"
    )
    assert sb.execute(code, timeout=60).ok
    st = sb.state()
    by_name = {v.name: v for v in st.variables}

    frame = by_name["frame"]
    assert frame.type == "DataFrame"
    assert frame.shape == "(3, 2)"
    assert frame.columns == ["age", "city"]
    assert "float64" in (frame.detail or "")
    assert by_name["numbers"].type == "list" and by_name["numbers"].shape == "len 3"
    assert by_name["count"].type == "int" and by_name["count"].detail == "= 7"
    assert by_name["settings"].type == "dict" and "alpha" in (by_name["settings"].detail or "")
    assert by_name["matrix"].type == "ndarray" and by_name["matrix"].shape == "(4, 5)"
    assert by_name["helper"].type == "function"
    assert st.has("frame") and not st.has("_private")

    assert not [name for name in by_name if name.startswith("_")]
    assert not {"In", "Out", "get_ipython", "exit", "quit"} & set(by_name)
    assert {"np", "pd"} <= set(st.modules)
    assert "np" not in by_name and "pd" not in by_name  # modules are imports, not variables


def test_state_survives_an_object_with_an_odd_shape_attribute(sb):
    code = "class Tile:\n    shape = 'square'\n    sides = 4\ntile = Tile()\ntile.shape = 4\nvisible = 1"
    assert sb.execute(code, timeout=30).ok
    try:
        st = sb.state()
    finally:
        sb.execute("del tile", timeout=30)  # the shared kernel must stay describable
    assert st.has("visible")  # the other variables are still described
    assert st.has("tile")


def test_output_flood_keeps_head_and_tail(tmp_path):
    with Sandbox(tmp_path, output_kb=1) as small:
        r = small.execute("print('HEAD' + 'x' * 20000 + 'TAIL')", timeout=30)
        assert r.ok
        total = len("HEAD") + 20000 + len("TAIL") + 1
        assert r.stdout.startswith("HEAD")
        assert r.stdout.endswith("TAIL\n")
        assert f"[{total - 1024} characters cut]" in r.stdout
        assert len(r.stdout) < 1024 + 100

        # many small writes are one flood too, and stderr is limited the same way
        many = small.execute(
            "import sys\nfor i in range(5000):\n    print(i)\n    print(-i, file=sys.stderr)",
            timeout=30,
        )
        assert many.ok
        assert many.stdout.startswith("0\n1\n2\n") and many.stdout.endswith("4998\n4999\n")
        assert "characters cut" in many.stdout and len(many.stdout) < 1024 + 100
        assert many.stderr.endswith("-4999\n") and len(many.stderr) < 1024 + 100

        value = small.execute("'y' * 50000", timeout=30)
        (out,) = value.outputs
        assert out.mime == "text/plain" and "characters cut" in out.text and len(out.text) < 1024 + 100


def test_kernel_death_is_reported_and_next_cell_runs_on_fresh_kernel(tmp_path):
    with Sandbox(tmp_path) as own:
        assert own.execute("doomed = 1", timeout=30).ok
        start = time.perf_counter()
        r = own.execute("import os\nos._exit(1)", timeout=30)
        assert time.perf_counter() - start < 15
        assert not r.ok
        assert r.error is not None and r.error.name == "KernelDied"
        after = own.execute("print('doomed' in dir())\nfresh = 2\nprint(fresh + 1)", timeout=30)
        assert after.ok, after.error
        assert after.stdout == "False\n3\n"  # a new, empty namespace
        assert own.alive
        assert own.state().has("fresh")
