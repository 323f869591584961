"""The engine is a pure library: it imports no service or queue packages and changes no process
setting when imported (the entry points apply the OpenMP defaults)."""

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import numpy as np
import recon.engine as engine
from recon.engine.examples import example_cloud
from recon.engine.formats.pointcloud import PointCloud
points, normals = example_cloud("sphere", n=300, seed=0)
import dataclasses
config = engine.build_config("nap", "fast", device="cpu", resolution=24, max_iterations=5)
config = dataclasses.replace(
    config, metrics_samples=2000,
    preparation=dataclasses.replace(config.preparation, total_queries=20_000),
    training=dataclasses.replace(config.training, num_threads=1),
)
result = engine.reconstruct(PointCloud(points=points, normals=normals), config)
forbidden = ["celery", "boto3", "fastapi", "redis", "pydantic", "botocore", "kombu"]
print(json.dumps({"loaded": [m for m in forbidden if m in sys.modules],
                  "faces": len(result.mesh.faces)}))
"""


def test_engine_imports_no_service_packages():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["faces"] > 0


IMPORT_ALL = """
import importlib, json, os, pkgutil, sys
os.environ.pop("OMP_WAIT_POLICY", None)
import torch  # its own import may set what it likes; the engine's must not
before, threads = dict(os.environ), torch.get_num_threads()
import recon.engine
names = [m.name for m in pkgutil.walk_packages(recon.engine.__path__, "recon.engine.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps({"modules": len(names), "changed": changed,
                  "threads": [threads, torch.get_num_threads()]}))
"""


def test_importing_the_engine_changes_no_process_setting():
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True,
                          timeout=300, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["modules"] >= 20
    assert report["changed"] == []
    assert report["threads"][0] == report["threads"][1]


def test_entry_points_set_the_openmp_defaults_but_keep_the_users():
    from recon.engine.runtime import configure_process

    environ = {"PATH": "/usr/bin"}
    configure_process(environ)
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    configure_process(chosen)
    assert chosen == {"OMP_WAIT_POLICY": "ACTIVE"}
