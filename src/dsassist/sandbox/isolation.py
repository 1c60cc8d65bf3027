"""How a kernel process is confined: bubblewrap, an unprivileged user, resource limits, a clean env.

The kernel's command line is wrapped as
`bwrap [mounts] -- setpriv [to the kernel user] -- prlimit [limits] -- python -m ipykernel_launcher ...`,
each layer only where it applies (bubblewrap present, running as root, a limit set).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dsassist.errors import DSAssistError

Isolation = Literal["auto", "strict", "none"]
# Kernels run as users that own nothing and can read only what everyone can. Each sandbox
# gets its own uid, so that the process limit (counted per user) is its own too.
FIRST_KERNEL_UID = 200_000
_uids = itertools.count()


def next_kernel_uid() -> int:
    return FIRST_KERNEL_UID + (os.getpid() * 1024 + next(_uids)) % 1_000_000


# what a kernel may inherit from the controller's environment; everything else (API keys,
# tokens, cloud credentials) stays out
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ENV_ALLOW_PREFIX = ("LC_",)


@dataclass(frozen=True)
class Limits:
    """Per-kernel limits; None switches a limit off."""

    memory_mb: int | None = 4096  # address space
    cpu_s: int | None = None  # CPU seconds over the kernel's life
    processes: int | None = 256  # processes of the kernel's user
    file_mb: int | None = 1024  # largest file the kernel may write
    output_kb: int = 256  # per stream and cell; head and tail are kept
    cores: int | None = None  # threads the kernel's libraries may use (its share of the CPUs)


class IsolationUnavailable(DSAssistError):
    """`isolation="strict"` was asked for where bubblewrap cannot run."""


@dataclass
class Confinement:
    """The wrapper command and environment for one kernel whose writable folder is `workdir`."""

    workdir: Path
    limits: Limits = field(default_factory=Limits)
    isolation: Isolation = "auto"
    read_only: tuple[Path, ...] = ()  # extra paths the kernel must see (the dataset)
    uid: int | None = None  # the kernel user; kernels sharing a folder must share it

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", "strict", "none"):
            raise DSAssistError(f"isolation must be auto, strict or none, not {self.isolation!r}")
        self.bwrap = self.isolation != "none" and bubblewrap_works()
        if self.isolation == "strict" and not self.bwrap:
            raise IsolationUnavailable(
                "isolation 'strict' needs bubblewrap, which is not available here "
                "(apt-get install bubblewrap)"
            )
        if self.isolation == "auto" and not self.bwrap:
            warnings.warn(
                "bubblewrap is not available: kernels run without filesystem and network isolation",
                RuntimeWarning,
                stacklevel=3,
            )
        # only inside bubblewrap: outside it the interpreter may sit in root's private home
        self.drop_privileges = os.geteuid() == 0 and self.bwrap
        if not self.drop_privileges:
            self.uid = os.geteuid()
        elif self.uid is None:
            self.uid = next_kernel_uid()

    def prepare(self, *folders: Path) -> None:
        """Make the folders the kernel writes to, and all in them, its own.

        All in them: a resumed run's checkpoints were written by an earlier kernel's user.
        Never through a link the kernel may have planted.
        """
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            if not self.drop_privileges:
                continue
            os.chown(folder, self.uid, self.uid, follow_symlinks=False)
            for root, dirs, files in os.walk(folder):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    if os.lstat(path).st_uid != self.uid:
                        os.chown(path, self.uid, self.uid, follow_symlinks=False)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIX)}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(HOME=str(self.workdir), PYTHONHASHSEED="0", MPLCONFIGDIR=str(self.workdir / ".config"))
        if self.limits.cores:  # kernels on parallel branches share the machine's cores
            threads = str(self.limits.cores)
            env.update(DSASSIST_CORES=threads, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        return env

    def wrap(self, command: list[str], writable: list[Path]) -> list[str]:
        prefix: list[str] = []
        if self.bwrap:
            prefix += self._bwrap_args(writable)
        if self.drop_privileges:
            prefix += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--"]
        prefix += self._prlimit_args()
        return prefix + command

    def _prlimit_args(self) -> list[str]:
        lim = self.limits
        args = []
        if lim.memory_mb:
            args.append(f"--as={lim.memory_mb * 1024 * 1024}")
        if lim.cpu_s:
            # soft below hard: SIGXCPU names the limit before SIGKILL would end the kernel
            args.append(f"--cpu={lim.cpu_s}:{lim.cpu_s + 2}")
        if lim.processes:
            args.append(f"--nproc={lim.processes}")
        if lim.file_mb:
            args.append(f"--fsize={lim.file_mb * 1024 * 1024}")
        return ["prlimit", *args, "--"] if args else []

    def _bwrap_args(self, writable: list[Path]) -> list[str]:
        home = Path(os.path.expanduser("~")).resolve()
        masked = [Path("/tmp"), home]  # private /tmp, and no access to the user's home
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "0755", "--tmpfs", str(home)]
        # a private /dev/shm: joblib's worker processes need POSIX semaphores (without them
        # scikit-learn's n_jobs silently runs in serial)
        args += ["--perms", "1777", "--tmpfs", "/dev/shm"]
        for path in _interpreter_paths() + [p.resolve() for p in self.read_only]:
            args += _expose(path, masked, "--ro-bind")
        for path in writable:
            args += _expose(path.resolve(), masked, "--bind")
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        # ipykernel exits when its parent's pid changes, as it does across the pid namespace;
        # --die-with-parent ends the kernel with the controller instead
        args += ["--unsetenv", "JPY_PARENT_PID", "--die-with-parent", "--new-session"]
        args += ["--chdir", str(self.workdir), "--"]
        return args


def _expose(path: Path, masked: list[Path], how: str) -> list[str]:
    """Mount `path` into the sandbox; under a masked folder, create its parents traversable first."""
    if not path.exists():
        return []
    args: list[str] = []
    root = next((m for m in masked if path.is_relative_to(m)), None)
    if root is not None:
        for parent in reversed(path.parents):
            if parent.is_relative_to(root) and parent != root:
                args += ["--perms", "0755", "--dir", str(parent)]
    target = str(path)
    return [*args, how, target, target]


def _interpreter_paths() -> list[Path]:
    """Where this Python and its packages live, so the kernel can import them whatever is masked."""
    paths = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths.add(Path(os.path.realpath(sys.executable)).parent.parent)
    paths.update(Path(p).resolve() for p in sys.path if p and Path(p).is_dir())
    return sorted(paths)


@functools.cache
def bubblewrap_works() -> bool:
    """bwrap is installed and may create namespaces here (some containers forbid it)."""
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0
