"""What the sandbox asks of a kernel's namespace: a summary of it, checkpoints of it.

Imported into every kernel at start (`from dsassist_kernel.probes import ...` among the
kernel's exec_lines, so IPython hides the names from the user's namespace). The controller
calls these functions as silent user_expressions; each returns a `Reply`, whose text/plain
form is the JSON itself, so the controller reads it with a plain JSON parser.

Checkpoints: each variable is pickled on its own (cloudpickle) into `objects/<sha256>`, so
what did not change between steps (the data, the folds) is stored once. Modules are recorded
by name and re-imported. What cannot be pickled is listed; the controller replays the cells
that made it.
"""

import hashlib
import importlib
import json
import os
import types
import uuid

from IPython import get_ipython

__all__ = ["_dsassist_checkpoint", "_dsassist_restore", "_dsassist_state"]


class Reply:
    """A JSON answer whose repr is the JSON, as user_expressions send the repr."""

    def __init__(self, value):
        self.text = json.dumps(value)

    def __repr__(self):
        return self.text


def _user_names():
    """The user's names: not underscore names, not what IPython defined at start."""
    shell = get_ipython()
    hidden = set(shell.user_ns_hidden)
    return [(n, v) for n, v in list(shell.user_ns.items()) if not n.startswith("_") and n not in hidden]


def _describe(name, value):
    item = {"name": name, "type": type(value).__name__}
    if callable(value) and not hasattr(value, "fit"):
        if isinstance(value, types.FunctionType):
            item["type"] = "function"
        return item
    shape = getattr(value, "shape", None)
    if shape is not None:
        item["shape"] = str(tuple(shape))
    elif isinstance(value, (list, tuple, dict, set)):
        item["shape"] = f"len {len(value)}"
    cols = getattr(value, "columns", None)
    if cols is not None:
        item["columns"] = [str(c) for c in list(cols)[:100]]
    dtypes = getattr(value, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        counts = {}
        for dt in dtypes.values:
            counts[str(dt)] = counts.get(str(dt), 0) + 1
        item["detail"] = "dtypes " + ", ".join(f"{k}x{v}" for k, v in counts.items())
    elif isinstance(value, dict):
        item["detail"] = "keys " + ", ".join(map(str, list(value)[:12]))
    elif isinstance(value, (int, float, str, bool)):
        item["detail"] = "= " + repr(value)[:60]
    return item


def _dsassist_state():
    """Names, types, shapes and dtypes of the user's variables, and the imported modules."""
    variables, modules = [], []
    for name, value in _user_names():
        if isinstance(value, types.ModuleType):
            modules.append(name)
            continue
        try:
            variables.append(_describe(name, value))
        except Exception:  # an object with odd attributes still gets a line
            variables.append({"name": name, "type": type(value).__name__})
    return Reply({"variables": variables, "modules": sorted(modules)})


def _dsassist_checkpoint(folder):
    """Pickle each variable into the content-addressed store under `folder`."""
    import cloudpickle

    objects = os.path.join(folder, "objects")
    os.makedirs(objects, exist_ok=True)
    out = {"objects": {}, "modules": {}, "unpicklable": [], "newBytes": 0}
    for name, value in _user_names():
        if isinstance(value, types.ModuleType):
            out["modules"][name] = value.__name__
            continue
        try:
            blob = cloudpickle.dumps(value, protocol=5)
        except Exception:
            out["unpicklable"].append(name)
            continue
        sha = hashlib.sha256(blob).hexdigest()
        path = os.path.join(objects, sha)
        if not os.path.exists(path):
            # kernels of parallel branches share the store: each writes its own temporary file
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)  # a kill mid-write leaves no half object
            out["newBytes"] += len(blob)
        out["objects"][name] = sha
    return Reply(out)


def _dsassist_restore(folder, manifest):
    """Bring a checkpoint's modules and objects (a JSON manifest) into the namespace."""
    import cloudpickle

    ns = get_ipython().user_ns
    manifest = json.loads(manifest)
    for alias, module in manifest["modules"].items():
        ns[alias] = importlib.import_module(module)
    for name, sha in manifest["objects"].items():
        with open(os.path.join(folder, "objects", sha), "rb") as f:
            blob = f.read()
        if hashlib.sha256(blob).hexdigest() != sha:
            raise ValueError(f"checkpoint object for {name!r} is corrupt")
        ns[name] = cloudpickle.loads(blob)
    return Reply(len(manifest["objects"]))
