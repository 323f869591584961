"""The engine is a pure library: a full reconstruct imports no service or queue packages."""

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
