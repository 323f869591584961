"""`recon example` and `recon reconstruct` through the CLI's main(), as a user runs them."""

import json

import numpy as np

from recon.engine.cli import main
from recon.engine.formats.pointcloud import load_point_cloud


def test_example_writes_a_loadable_cloud_with_normals(tmp_path):
    out = tmp_path / "torus.ply"
    assert main(["example", "torus", "-o", str(out), "--points", "500", "--seed", "3"]) == 0
    cloud = load_point_cloud(out)
    assert cloud.points.shape == (500, 3)
    assert cloud.normals is not None
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-5)


def test_example_rejects_an_unknown_shape(tmp_path, capsys):
    assert main(["example", "cube", "-o", str(tmp_path / "x.ply")]) == 2
    assert "valid examples: sphere, torus" in capsys.readouterr().err


def test_reconstruct_writes_mesh_and_metrics(tmp_path, capsys):
    cloud, mesh, metrics = tmp_path / "s.ply", tmp_path / "s.glb", tmp_path / "m.json"
    assert main(["example", "sphere", "-o", str(cloud), "--points", "400"]) == 0
    status = main([
        "reconstruct", str(cloud), "-o", str(mesh), "--preset", "fast", "--device", "cpu",
        "--max-iterations", "30", "--resolution", "32", "--ground-truth", str(cloud),
        "--metrics-out", str(metrics),
    ])
    assert status == 0
    assert mesh.read_bytes()[:4] == b"glTF"
    report = json.loads(metrics.read_text())
    assert {"cd1_x100", "cd2_x100", "nc", "fscore_0.01"} <= set(report["ground_truth"])
    assert report["run"]["iterations"] == 30 and report["run"]["seconds_total"] > 0
    err = capsys.readouterr().err
    assert "train" in err and "wrote" in err


def test_bad_input_exits_non_zero_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a point cloud")
    assert main(["reconstruct", str(bad), "-o", str(tmp_path / "o.glb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recon: error:")


def test_unknown_method_and_format_are_reported(tmp_path, capsys):
    cloud = tmp_path / "s.ply"
    main(["example", "sphere", "-o", str(cloud)])
    assert main(["reconstruct", str(cloud), "-o", str(tmp_path / "o.glb"), "--method", "x"]) == 2
    assert "valid methods" in capsys.readouterr().err
    assert main(["reconstruct", str(cloud), "-o", str(tmp_path / "o.fbx")]) == 2
    assert "unsupported output format" in capsys.readouterr().err
