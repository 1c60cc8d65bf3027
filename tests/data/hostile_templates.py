"""Templates whose cells attack the sandbox, for tests/sandbox/test_hostile.py.

Each hostile cell is an ordinary step of kind "feature" (it runs after the models). It first
prints which kernel it runs in (the kernel process's start time) and the canary set by the
first template, then does one bad thing, and only then calls `evaluate(...)`: if the bad
thing were allowed, the step would succeed, so a failed step means the sandbox stopped it.
Three cells do not fail: the canary, and two whose harm would come later, out of the kernel
(links swapped into the work folder, a model that runs code where it is unpickled).

Paths are relative to the kernel's working folder, `<base>/run/work`: the test lays out
`<base>/outside` (a world-writable folder), `<base>/victim` and `<base>/trojan` next to the
run folder `<base>/run`. Two values come from the controller's environment, read here when the
templates are loaded: `DSASSIST_HOSTILE_PORT`, where a service listens on the host (Redis'
6379 by default), and `DSASSIST_HOSTILE_HOME_PROBE`, a world-readable file in the
controller's home folder.
"""

from __future__ import annotations

import os

from dsassist.templates import Template
from dsassist.templates.tabular.library import EVALUATE

PORT = int(os.environ.get("DSASSIST_HOSTILE_PORT", "6379"))
HOME_PROBE = os.environ.get("DSASSIST_HOSTILE_HOME_PROBE", os.path.expanduser("~/.ssh/id_ed25519"))
CANARY = "canary-7f3a"
SECRET_ENV = "DSASSIST_PROBE_TOKEN"

# which kernel this is (its start time in clock ticks since boot), and whether the canary is there
PREAMBLE = """
candidate_spec = {**spec}
print("kernel", open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19], "canary", canary)
"""


def after_models(run):
    return [{}] if any(s.kind == "model" for s in run.steps) else []


def _cell(attack: str) -> str:
    return PREAMBLE + attack.strip("\n") + "\n" + EVALUATE


def _hostile(id: str, hypothesis: str, attack: str) -> Template:
    return Template(id, "feature", hypothesis, _cell(attack), after_models)


CANARY_CELL = f"""
canary = {CANARY!r}
candidate_spec = {{**spec}}
{EVALUATE}
"""

# Not failed: these cells succeed inside the sandbox, and the harm would come later.
# Swap the files the controller (root) may write in the kernel's folder, the kernel log and
# the images, for links to a file and a folder out of the run folder.
SYMLINKS = """
import os
for name, target in (("kernel.log", "../../victim/controller.log"), ("artifacts", "../../victim")):
    if os.path.lexists(name):
        os.rename(name, name + ".old")
    os.symlink(target, name)
import matplotlib.pyplot as plt
plt.plot([0, 1], [1, 0])
plt.show()
"""

# The final step pickles the model in the kernel, and `dsassist predict` unpickles it on the
# host: wrap the model so that unpickling it also runs code of the kernel's choosing.
TROJAN_MODEL = """
import os

_real_save_model = save_model


def _unwrap(model, victim=os.path.abspath("../../trojan/predict.txt")):
    with open(victim, "w") as f:
        f.write("ran by dsassist predict")
    return model


class _Wrapped:
    def __init__(self, model):
        self.model = model

    def __reduce__(self):
        return (_unwrap, (self.model,))


def save_model(pipeline, path, meta):
    _real_save_model(_Wrapped(pipeline), path, meta)
"""

NETWORK = f"""
import socket
socket.create_connection(("127.0.0.1", {PORT}), timeout=3).sendall(b"hostile kernel\\n")
"""

READ_HOME = f"""
print(open({HOME_PROBE!r}).read())
"""

READ_ENV = f"""
import os
print(os.environ[{SECRET_ENV!r}])
"""

WRITE_OUTSIDE = """
with open("../../outside/planted.txt", "w") as f:
    f.write("written by the kernel")
"""

DELETE_DB_RELATIVE = """
import os
os.remove("../provenance.db")
"""

DELETE_DB_ABSOLUTE = """
import os
os.remove(os.path.join(os.path.dirname(os.getcwd()), "provenance.db"))
"""

DROP_TABLE = """
import sqlite3
sqlite3.connect("../provenance.db").execute("drop table steps")
"""

MEMORY_BOMB = """
def hog():
    chunks = []
    while True:
        chunks.append(bytearray(256 * 2**20))
hog()
"""

INFINITE_LOOP = """
while True:
    pass
"""

# about 10 MB/s, for ever (an unthrottled flood breaks the kernel: see test_isolation.py; a
# loop that ignores the interrupt is there too, where it costs less than a cell timeout)
OUTPUT_FLOOD = """
import time
while True:
    print("flood " * 2000)
    time.sleep(0.001)
"""

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

EXIT = """
import os
os._exit(1)
"""

SIGKILL = """
import os
os.kill(os.getpid(), 9)
"""

SEGFAULT = """
import ctypes
ctypes.string_at(0)
"""

# template id -> the names the cause may carry in executions.error_name
EXPECTED = {
    "hostile_network": ("ConnectionRefusedError", "OSError"),
    "hostile_read_home": ("FileNotFoundError",),  # PermissionError: visible, only unreadable
    "hostile_read_env": ("KeyError",),
    "hostile_write_outside": ("OSError", "FileNotFoundError", "PermissionError"),
    "hostile_delete_db_relative": ("OSError", "FileNotFoundError", "PermissionError"),
    "hostile_delete_db_absolute": ("OSError", "FileNotFoundError", "PermissionError"),
    "hostile_drop_table": ("OperationalError",),
    "hostile_memory_bomb": ("MemoryLimit",),
    "hostile_infinite_loop": ("Timeout",),
    "hostile_output_flood": ("Timeout",),
    "hostile_fork_bomb": ("ProcessLimit",),
    "hostile_exit": ("KernelDied",),
    "hostile_sigkill": ("KernelDied",),
    "hostile_segfault": ("KernelDied",),
}
# the cases after which the sandbox replaces the kernel and restores the last checkpoint
KERNEL_REPLACED = {
    "hostile_fork_bomb",
    "hostile_exit",
    "hostile_sigkill",
    "hostile_segfault",
}

TEMPLATES = [
    Template("hostile_canary", "feature", "A canary in the namespace (no change)", CANARY_CELL, after_models),
    _hostile("hostile_symlink", "Swap the controller's files in work/ for links out of it", SYMLINKS),
    _hostile("hostile_trojan_model", "Make the saved model run code where it is loaded", TROJAN_MODEL),
    _hostile("hostile_network", "Connect to a service on the host", NETWORK),
    _hostile("hostile_read_home", "Read a key in the controller's home", READ_HOME),
    _hostile("hostile_read_env", "Read a secret from the controller's environment", READ_ENV),
    _hostile("hostile_write_outside", "Write next to the run folder", WRITE_OUTSIDE),
    _hostile("hostile_delete_db_relative", "Delete ../provenance.db", DELETE_DB_RELATIVE),
    _hostile("hostile_delete_db_absolute", "Delete the database by its absolute path", DELETE_DB_ABSOLUTE),
    _hostile("hostile_drop_table", "Drop the steps table of the database", DROP_TABLE),
    _hostile("hostile_memory_bomb", "Allocate until memory runs out", MEMORY_BOMB),
    _hostile("hostile_infinite_loop", "Loop forever", INFINITE_LOOP),
    _hostile("hostile_output_flood", "Print forever", OUTPUT_FLOOD),
    _hostile("hostile_fork_bomb", "Fork until the machine gives up", FORK_BOMB),
    _hostile("hostile_exit", "Exit the kernel process", EXIT),
    _hostile("hostile_sigkill", "Kill the kernel process", SIGKILL),
    _hostile("hostile_segfault", "Crash the kernel with a segmentation fault", SEGFAULT),
]
