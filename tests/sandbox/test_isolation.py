"""The sandbox's confinement, limits and checkpoints, tested directly on `Sandbox`.

Most tests need bubblewrap (the filesystem and network isolation); those of `isolation="strict"`
and `isolation="none"` do not.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest

import dsassist.sandbox.isolation as isolation
from dsassist.sandbox import Sandbox
from dsassist.sandbox.isolation import FIRST_KERNEL_UID, IsolationUnavailable

HAVE_BWRAP = shutil.which("bwrap") is not None and isolation.bubblewrap_works()
needs_bwrap = pytest.mark.skipif(
    not HAVE_BWRAP, reason="bubblewrap (bwrap) is missing or cannot create namespaces here"
)
ROOT = os.geteuid() == 0
VISIBLE_TMP = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None  # not the masked /tmp
SECRETS = {
    "OPENAI_API_KEY": "sk-" + uuid.uuid4().hex,
    "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex,
    "DSASSIST_TEST_TOKEN": uuid.uuid4().hex,
}
# every process forks until the process table is full; the children then hold their slots
FORK_BOMB = """
import os, time
parent = os.getpid()
while True:
    try:
        os.fork()
    except BlockingIOError:
        if os.getpid() == parent:
            raise
        time.sleep(3600)
"""


@pytest.fixture(scope="module")
def base():
    """A folder outside the private /tmp, so that what is next to the work folder is visible."""
    folder = Path(tempfile.mkdtemp(prefix="dsassist-isolation-", dir=VISIBLE_TMP))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def confined(base):
    """One confined kernel for the tests that leave it as they found it; secrets in the env."""
    if not HAVE_BWRAP:
        pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces here")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SECRETS.items():
            mp.setenv(name, value)
        sandbox = Sandbox(base / "work", memory_mb=2048, file_mb=1, pool=0)
        sandbox.start()  # the kernel's environment is taken now
    yield sandbox
    sandbox.close()


@pytest.fixture
def outside(base):
    """A world-writable folder next to the work folder: only the sandbox keeps the kernel out."""
    folder = base / f"outside-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def value(sb: Sandbox, expression: str):
    """The value of a JSON-able expression evaluated in the kernel."""
    r = sb.execute(f"import json, os\nprint(json.dumps({expression}))", timeout=30)
    assert r.ok, r.error
    return json.loads(r.stdout)


# ---- confinement ----------------------------------------------------------------------------


@needs_bwrap
@pytest.mark.skipif(not ROOT, reason="the kernel drops to nobody only when the controller runs as root")
def test_the_kernel_runs_as_an_unprivileged_user(confined):
    ids = value(confined, "[os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]")
    uid = confined.confinement.uid
    assert uid >= FIRST_KERNEL_UID and ids == [uid] * 4 + [[]]


@needs_bwrap
def test_the_environment_carries_none_of_the_controllers_secrets(confined):
    env = value(confined, "dict(__import__('os').environ)")
    assert not set(SECRETS) & set(env)
    assert not set(SECRETS.values()) & set(env.values())
    assert env["HOME"] == str(confined.workdir)


@needs_bwrap
def test_there_is_no_network(confined):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        r = confined.execute(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)", 30)
        assert not r.ok and r.error.name in ("ConnectionRefusedError", "OSError"), r.error
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert value(confined, "[name for _, name in __import__('socket').if_nameindex()]") == ["lo"]


@needs_bwrap
def test_the_home_folder_is_hidden(confined):
    home = Path.home()
    probe = home / f".dsassist-probe-{uuid.uuid4().hex}"
    probe.write_text("secret")
    probe.chmod(0o644)
    try:
        r = confined.execute(f"print(open({str(probe)!r}).read())", timeout=30)
        assert not r.ok and r.error.name == "FileNotFoundError", r.error  # not even there
        assert probe.name not in value(confined, f"os.listdir({str(home)!r})")
    finally:
        probe.unlink()


@needs_bwrap
def test_writes_outside_the_work_folder_fail(confined, outside):
    targets = [outside / "planted.txt", confined.workdir.parent / "planted.txt", Path(sys.prefix) / "planted"]
    for target in targets:
        r = confined.execute(f"open({str(target)!r}, 'w').write('x')", timeout=30)
        assert not r.ok and r.error.name in ("OSError", "FileNotFoundError"), (target, r.error)
        if VISIBLE_TMP is not None:  # a read-only mount, not file permissions
            assert f"[Errno {errno.EROFS}]" in r.error.value, (target, r.error.value)
        assert not target.exists()
    assert os.listdir(outside) == []
    inside = confined.execute("open('made-inside.txt', 'w').write('ok')", timeout=30)
    assert inside.ok and (confined.workdir / "made-inside.txt").read_text() == "ok"


@needs_bwrap
def test_tmp_is_private(confined):
    host = Path("/tmp") / f"dsassist-{uuid.uuid4().hex}"
    host.write_text("host")
    try:
        assert value(confined, f"os.path.exists({str(host)!r})") is False
        # only the folders the sandbox mounts on purpose show (the interpreter may live in /tmp)
        mounted = [
            confined._kernel.sockets,
            confined.workdir,
            Path(sys.prefix).resolve(),
            *map(Path, sys.path),
        ]
        allowed = {
            p.relative_to("/tmp").parts[0] for p in mounted if p.is_relative_to("/tmp") and p != Path("/tmp")
        }
        assert set(value(confined, "os.listdir('/tmp')")) <= allowed
    finally:
        host.unlink()


@needs_bwrap
def test_worker_processes_run_in_parallel_with_a_private_dev_shm(confined):
    """joblib (scikit-learn's n_jobs) needs POSIX semaphores in /dev/shm; without them it
    silently runs in serial."""
    name = f"dsassist-{uuid.uuid4().hex}"
    code = (
        "import os, time, warnings\n"
        "from joblib import Parallel, delayed\n"
        "def pid():\n"
        "    time.sleep(0.2)\n"
        "    return os.getpid()\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('error')\n"
        "    pids = set(Parallel(n_jobs=2, batch_size=1)(delayed(pid)() for _ in range(6)))\n"
        f"open('/dev/shm/{name}', 'w').write('kernel')\n"
        "print(len(pids))"
    )
    r = confined.execute(code, timeout=60)
    assert r.ok, r.error
    assert int(r.stdout.strip()) == 2 and not (Path("/dev/shm") / name).exists()


@needs_bwrap
def test_the_kernel_may_write_its_private_tmp(confined):
    name = f"dsassist-{uuid.uuid4().hex}"
    r = confined.execute(f"open('/tmp/{name}', 'w').write('kernel')", timeout=30)
    assert not (Path("/tmp") / name).exists()  # private either way
    assert r.ok, r.error


@needs_bwrap
def test_a_timeout_interrupts_the_cell_and_keeps_the_kernel(confined):
    assert confined.execute("kept = 'still here'", timeout=30).ok
    start = time.perf_counter()
    r = confined.execute("import time\ntime.sleep(30)", timeout=1)
    assert time.perf_counter() - start < 5
    assert not r.ok and r.error.name == "Timeout" and "fresh kernel" not in r.error.value
    assert value(confined, "kept") == "still here"


@needs_bwrap
def test_a_cell_that_ignores_interrupts_is_killed_and_the_checkpoint_restored(tmp_path):
    with Sandbox(tmp_path, interrupt_grace_s=1) as sb:
        assert sb.execute("kept = 'from the checkpoint'", timeout=30).ok
        sb.checkpoint("before")
        assert sb.execute("kept = 'lost'", timeout=30).ok
        start = time.perf_counter()
        deaf = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
        r = sb.execute(deaf, timeout=1)
        assert time.perf_counter() - start < 10
        assert r.error.name == "Timeout" and r.error.value.endswith("restored from checkpoint before")
        assert value(sb, "kept") == "from the checkpoint"


# ---- isolation modes ------------------------------------------------------------------------


@pytest.fixture
def no_bubblewrap(monkeypatch):
    # Confinement calls the module's bubblewrap_works (functools.cache'd): replace the name
    monkeypatch.setattr(isolation, "bubblewrap_works", lambda: False)


def test_strict_isolation_without_bubblewrap_raises(no_bubblewrap, tmp_path):
    with pytest.raises(IsolationUnavailable, match="bubblewrap"):
        Sandbox(tmp_path, isolation="strict")


def test_auto_isolation_without_bubblewrap_warns(no_bubblewrap, tmp_path):
    with pytest.warns(RuntimeWarning, match="without filesystem and network isolation"):
        Sandbox(tmp_path, isolation="auto")


def test_auto_isolation_without_bubblewrap_still_runs(no_bubblewrap, tmp_path):
    with pytest.warns(RuntimeWarning), Sandbox(tmp_path, isolation="auto", pool=0) as sb:
        r = sb.execute("print(6 * 7)", timeout=30)
    assert r.ok and r.stdout == "42\n"


def test_no_isolation_runs_as_the_controller_without_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("DSASSIST_TEST_TOKEN", SECRETS["DSASSIST_TEST_TOKEN"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb = Sandbox(tmp_path, isolation="none", pool=0)
    with sb:
        uid, env = value(sb, "[os.getuid(), sorted(os.environ)]")
    assert uid == os.getuid()
    assert "DSASSIST_TEST_TOKEN" not in env  # the environment is filtered all the same


# ---- limits ---------------------------------------------------------------------------------


@needs_bwrap
def test_memory_limit_names_the_error_and_the_kernel_goes_on(confined):
    assert confined.execute("small = list(range(10))", timeout=30).ok
    r = confined.execute("big = bytearray(3 * 1024**3)", timeout=30)
    assert not r.ok and r.error.name == "MemoryLimit", r.error
    assert r.error.value.startswith("MemoryError")
    assert value(confined, "[len(small), 'big' in dir()]") == [10, False]


@needs_bwrap
@pytest.mark.xfail(
    strict=True,
    raises=RuntimeError,
    reason="src bug: memory_mb is RLIMIT_AS, the address space, and a kernel maps several hundred "
    "MB while it starts (thread stacks, malloc arenas, more or less by chance), so with "
    "memory_mb=512 most kernels die while starting (about 9 in 10 here: 'the kernel died while "
    "starting'); RunConfig now asks for memory_mb >= 1024, the Sandbox API still takes less; "
    "three in a row all but never start",
)
def test_memory_limit_of_512_mb_stops_a_1_gb_allocation(tmp_path):
    for attempt in range(3):
        with Sandbox(tmp_path / str(attempt), memory_mb=512, pool=0) as sb:
            r = sb.execute("big = bytearray(1024**3)", timeout=30)
            assert r.error is not None and r.error.name == "MemoryLimit"
            assert sb.execute("print('next')", timeout=30).ok


@needs_bwrap
def test_file_size_limit_names_the_error(confined):
    r = confined.execute("open('big.bin', 'wb').write(b'0' * 5 * 2**20)", timeout=30)
    assert not r.ok and r.error.name == "FileSizeLimit", r.error
    assert (confined.workdir / "big.bin").stat().st_size == 2**20
    (confined.workdir / "big.bin").unlink()


@pytest.fixture(scope="module")
def cpu_limited(tmp_path_factory):
    """A busy loop in a kernel with 2 s of CPU time, and the cell after it."""
    if not HAVE_BWRAP:
        pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces here")
    with Sandbox(tmp_path_factory.mktemp("cpu"), cpu_s=2) as sb:
        assert sb.execute("before = 1", timeout=30).ok
        start = time.perf_counter()
        r = sb.execute("while True:\n    pass", timeout=30)
        elapsed = time.perf_counter() - start
        after = sb.execute("print('before' in dir())", timeout=30)
    return r, elapsed, after


def test_cpu_limit_ends_the_kernel_and_the_next_cell_runs_on_a_new_one(cpu_limited):
    r, elapsed, after = cpu_limited
    assert not r.ok and r.error.name in ("CPULimit", "KernelDied"), r.error
    assert "a fresh kernel replaced it" in r.error.value
    assert elapsed < 15
    assert after.ok and after.stdout == "False\n"


def test_cpu_limit_is_named_cpu_limit(cpu_limited):
    r, _, _ = cpu_limited
    assert r.error.name == "CPULimit", r.error


def settle(sb: Sandbox) -> None:
    """Wait until the pooled kernels have booted: one that boots while a fork bomb holds the
    process table dies (see test_a_dead_pooled_kernel_is_replaced)."""
    for spare in sb._spares:
        spare.wait_ready(60)


@needs_bwrap
def test_fork_bomb_hits_the_process_limit_quickly_and_the_checkpoint_is_restored(tmp_path):
    with Sandbox(tmp_path, processes=96) as sb:
        settle(sb)
        assert sb.execute("kept = 'from the checkpoint'", timeout=30).ok
        sb.checkpoint("before")
        start = time.perf_counter()
        r = sb.execute(FORK_BOMB, timeout=30)
        assert time.perf_counter() - start < 15
        assert not r.ok and r.error.name == "ProcessLimit", r.error
        assert r.error.value.endswith("restored from checkpoint before")
        assert value(sb, "kept") == "from the checkpoint"
        # the bomb's children went with the old kernel's pid namespace
        assert value(sb, "sum(p.isdigit() for p in os.listdir('/proc'))") < 10


@needs_bwrap
def test_a_dead_pooled_kernel_is_replaced(tmp_path):
    with Sandbox(tmp_path) as sb:
        settle(sb)
        for spare in sb._spares:
            process = spare.manager.provisioner.process  # bubblewrap: the kernel goes with it
            process.kill()
            process.wait()
        r = sb.execute("import os\nos._exit(1)", timeout=30)
        assert r.error.name == "KernelDied"
        assert sb.execute("print('next')", timeout=30).ok


@needs_bwrap
def test_one_sandbox_at_its_process_limit_leaves_another_alone(tmp_path):
    limit = 48
    with Sandbox(tmp_path / "a", processes=limit, pool=0) as a:
        fill = (
            "import threading, time\n"
            "hold = threading.Event()\n"
            "def fill():\n"
            "    while not hold.is_set():\n"
            "        try:\n"
            "            threading.Thread(target=hold.wait, daemon=True).start()\n"
            "        except RuntimeError:\n"
            "            time.sleep(0.005)\n"
            "threading.Thread(target=fill, daemon=True).start()\n"
            "time.sleep(1)"
        )
        assert a.execute(fill, timeout=30).ok
        try:
            with Sandbox(tmp_path / "b", processes=limit, pool=0) as b:
                r = b.execute("import threading\nt = threading.Thread(target=print)\nt.start()\nt.join()", 30)
                assert r.ok, r.error
        finally:
            a.execute("hold.set()", timeout=30)


# ---- output ---------------------------------------------------------------------------------


@needs_bwrap
@pytest.mark.xfail(
    strict=True,
    reason="src bug: output is capped only in the controller; in the kernel an endless flood of "
    "large prints fills ipykernel's stream buffer until the address-space limit, and the "
    "MemoryError inside ipykernel leaves the cell reported ok=True (most runs) or MemoryLimit, "
    "with leftovers in the next cell; once jupyter_client raised 'Invalid Signature' out of "
    "Sandbox.execute and ended the run",
)
def test_an_endless_flood_of_large_prints_times_out(tmp_path):
    with Sandbox(tmp_path, memory_mb=2048) as sb:
        assert sb.execute("import pandas, sklearn, lightgbm\nkept = 1", timeout=60).ok
        r = sb.execute('while True:\n    print("flood " * 200000)', timeout=5)
        assert r.error is not None and r.error.name == "Timeout", (r.ok, r.error, r.stderr[-300:])
        after = sb.execute("print(kept)", timeout=30)
        assert after.ok and after.stdout == "1\n"


# ---- files the controller touches in the kernel's folder ------------------------------------


# The controller (root) writes the kernel's log and its images into the work folder by default;
# the kernel owns that folder and may swap those paths for links out of it.


@needs_bwrap
def test_a_kernel_log_symlink_does_not_make_the_controller_write_outside(tmp_path, outside):
    target = outside / "controller.log"
    with Sandbox(tmp_path, pool=0) as sb:
        swap = f"import os\nos.remove('kernel.log')\nos.symlink({str(target)!r}, 'kernel.log')"
        assert sb.execute(swap, timeout=30).ok
        sb.restart()  # the controller opens the log for the new kernel
        assert sb.execute("import os\nos.write(2, b'to the log')", timeout=30).ok
    assert os.listdir(outside) == []


@needs_bwrap
def test_an_artifacts_symlink_does_not_make_the_controller_write_outside(tmp_path, outside):
    with Sandbox(tmp_path, pool=0) as sb:
        code = (
            f"import os\nos.symlink({str(outside)!r}, 'artifacts')\n"
            "from IPython.display import Image, display\n"
            "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n written by the kernel', format='png'))"
        )
        r = sb.execute(code, timeout=30)
    assert os.listdir(outside) == []
    assert not [o for o in r.outputs if o.path]


# ---- checkpoints ----------------------------------------------------------------------------


@needs_bwrap
def test_a_killed_kernel_comes_back_with_the_checkpoint(tmp_path):
    with Sandbox(tmp_path) as sb:
        assert sb.execute("import numpy as np\nx = 1\narr = np.arange(5)", timeout=30).ok
        sb.checkpoint("a")
        assert sb.execute("x = 2\ny = 'after the checkpoint'", timeout=30).ok
        r = sb.execute("import os\nos.kill(os.getpid(), 9)", timeout=30)
        assert not r.ok and r.error.name == "KernelDied", r.error
        assert r.error.value.endswith("restored from checkpoint a")
        state = value(sb, "[x, arr.tolist(), 'y' in dir(), np.__name__]")
        assert state == [1, [0, 1, 2, 3, 4], False, "numpy"]


@needs_bwrap
def test_an_unpicklable_object_is_rebuilt_by_replay(tmp_path):
    cells = ["def numbers():\n    yield from range(100)", "gen = numbers()\nfirst = next(gen)"]
    with Sandbox(tmp_path) as sb:
        for cell in cells:
            assert sb.execute(cell, timeout=30).ok
        checkpoint = sb.checkpoint("gen", replay=cells)
        assert checkpoint.unpicklable == ["gen"] and checkpoint.replay == cells
        assert "first" in checkpoint.objects and "numbers" in checkpoint.objects
        r = sb.execute("import os\nos._exit(1)", timeout=30)
        assert r.error.name == "KernelDied" and r.error.value.endswith("restored from checkpoint gen")
        assert value(sb, "[first, next(gen)]") == [0, 1]


@needs_bwrap
def test_branch_goes_back_to_an_older_state(tmp_path):
    with Sandbox(tmp_path) as sb:
        assert sb.execute("x = 'old'", timeout=30).ok
        old = sb.checkpoint("old")
        assert sb.execute("x = 'new'\ny = 1", timeout=30).ok
        sb.checkpoint("new")
        sb.branch(old)
        assert value(sb, "[x, 'y' in dir()]") == ["old", False]
        assert sb.last_checkpoint == old


@needs_bwrap
def test_a_corrupt_object_makes_restore_raise(tmp_path):
    with Sandbox(tmp_path) as sb:
        assert sb.execute("x = list(range(10))", timeout=30).ok
        checkpoint = sb.checkpoint("a")
        (sb.checkpoints / "objects" / checkpoint.objects["x"]).write_bytes(b"not a pickle")
        with pytest.raises(RuntimeError, match="corrupt"):
            sb.restore(checkpoint)


TAMPER = """
import glob, os
for path in glob.glob('.checkpoints/objects/*'):
    open(path, 'wb').write(b'tampered')
os._exit(1)
"""


@needs_bwrap
def test_checkpoints_the_kernel_corrupted_are_rebuilt_by_replay(tmp_path):
    """The objects live in the kernel's own folder: a cell may corrupt them, then die."""
    with Sandbox(tmp_path) as sb:
        cells = ["x = 41", "x += 1"]
        for cell in cells:
            assert sb.execute(cell, timeout=30).ok
        sb.checkpoint("a", replay=cells)
        r = sb.execute(TAMPER, timeout=30)
        assert r.error.name == "KernelDied" and r.error.value.endswith("restored from checkpoint a")
        assert value(sb, "x") == 42


@needs_bwrap
def test_execute_does_not_raise_when_corrupted_checkpoints_cannot_be_rebuilt(tmp_path):
    with Sandbox(tmp_path) as sb:
        assert sb.execute("x = 1", timeout=30).ok
        sb.checkpoint("a")  # no cells to replay
        r = sb.execute(TAMPER, timeout=30)
        assert r.error.name == "KernelDied" and "restoring a failed" in r.error.value, r.error
        assert value(sb, "'x' in dir()") is False  # a fresh kernel, and it works
