"""The RayCluster in docs/kuberay.yaml gives what the Ray executor needs of a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "kuberay.yaml"


def documents() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}


def pods(cluster: dict) -> list[dict]:
    spec = cluster["spec"]
    return [spec["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in spec["workerGroupSpecs"]
    ]


def test_every_pod_mounts_the_shared_run_volume_at_the_same_path():
    docs = documents()
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for pod in pods(docs["RayCluster"]):
        volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        for container in pod["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts == {"runs": "/runs"} and volumes["runs"] == claim["metadata"]["name"]


def test_one_image_everywhere_and_no_kernels_on_the_head():
    cluster = documents()["RayCluster"]
    images = {c["image"] for pod in pods(cluster) for c in pod["containers"]}
    assert len(images) == 1
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    for group in cluster["spec"]["workerGroupSpecs"]:
        cpus = int(group["rayStartParams"]["num-cpus"])
        limit = group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]
        assert cpus == int(limit), "Ray may place as many one-core kernels as the pod has cores"
