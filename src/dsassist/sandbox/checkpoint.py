"""Checkpoints of a kernel's namespace: content-addressed objects plus a manifest.

Each variable is pickled on its own (cloudpickle) into `objects/<sha256>`, so what did not
change between steps (the data, the folds) is stored once. Modules are recorded by name and
re-imported. What cannot be pickled is listed, and restoring replays the cells that made it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Checkpoint(BaseModel):
    label: str
    objects: dict[str, str] = Field(default_factory=dict)  # variable -> sha256 of its pickle
    modules: dict[str, str] = Field(default_factory=dict)  # alias -> module name
    unpicklable: list[str] = Field(default_factory=list)
    replay: list[str] = Field(default_factory=list)  # cells that rebuild the unpicklable names
    new_bytes: int = 0  # bytes this checkpoint added to the object store
    duration_s: float = 0.0


# Defined in every kernel at start; the leading underscore keeps them out of state summaries.
KERNEL_CODE = r"""
def _dsassist_checkpoint(folder):
    import hashlib, json, os, types, uuid
    import cloudpickle
    shell = get_ipython()
    hidden = set(shell.user_ns_hidden)
    objects = os.path.join(folder, 'objects')
    os.makedirs(objects, exist_ok=True)
    out = {'objects': {}, 'modules': {}, 'unpicklable': [], 'new_bytes': 0}
    for name, value in list(shell.user_ns.items()):
        if name.startswith('_') or name in hidden:
            continue
        if isinstance(value, types.ModuleType):
            out['modules'][name] = value.__name__
            continue
        try:
            blob = cloudpickle.dumps(value, protocol=5)
        except Exception:
            out['unpicklable'].append(name)
            continue
        sha = hashlib.sha256(blob).hexdigest()
        path = os.path.join(objects, sha)
        if not os.path.exists(path):
            # kernels of parallel branches share the store: each writes its own temporary file
            tmp = f'{path}.{uuid.uuid4().hex}.tmp'
            with open(tmp, 'wb') as f:
                f.write(blob)
            os.replace(tmp, path)  # a kill mid-write leaves no half object
            out['new_bytes'] += len(blob)
        out['objects'][name] = sha
    return json.dumps(out)


def _dsassist_restore(folder, manifest):
    import hashlib, importlib, json, os
    import cloudpickle
    ns = get_ipython().user_ns
    manifest = json.loads(manifest)
    for alias, module in manifest['modules'].items():
        ns[alias] = importlib.import_module(module)
    for name, sha in manifest['objects'].items():
        with open(os.path.join(folder, 'objects', sha), 'rb') as f:
            blob = f.read()
        if hashlib.sha256(blob).hexdigest() != sha:
            raise ValueError(f'checkpoint object for {name!r} is corrupt')
        ns[name] = cloudpickle.loads(blob)
"""
