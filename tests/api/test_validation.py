"""Upload checks: the file-type detection the API shares with the engine's sniffing helpers."""

import io
import re
from pathlib import Path

import numpy as np
import pytest

from recon.api.errors import UnsupportedMediaType
from recon.api.validation import detect_format
from recon.engine.formats.ground_truth import SUPPORTED_GROUND_TRUTH_FORMATS
from recon.engine.formats.pointcloud import FOREIGN_MAGIC, SUPPORTED_POINT_FORMATS
from tests.conftest import sphere_points


@pytest.mark.parametrize(("magic", "what"), FOREIGN_MAGIC.items())
def test_foreign_files_are_refused_whatever_their_name(
    tmp_path: Path, magic: bytes, what: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(magic + bytes(64))
    for supported in (SUPPORTED_POINT_FORMATS, SUPPORTED_GROUND_TRUTH_FORMATS):
        with pytest.raises(UnsupportedMediaType, match=re.escape(what)):
            detect_format(path, "scan.ply", supported)


def test_magic_bytes_win_over_the_name_and_text_is_sniffed(tmp_path: Path) -> None:
    npy, buffer = tmp_path / "npy", io.BytesIO()
    np.save(buffer, sphere_points())
    npy.write_bytes(buffer.getvalue())
    assert detect_format(npy, "scan.xyz", SUPPORTED_POINT_FORMATS) == "npy"
    text = tmp_path / "text"
    text.write_text("0 0 0\n1 0 0\n0 1 0\n")
    assert detect_format(text, None, SUPPORTED_POINT_FORMATS) == "xyz"
    assert detect_format(text, "scan.txt", SUPPORTED_POINT_FORMATS) == "xyz"


def test_text_meshes_are_left_to_their_readers(tmp_path: Path) -> None:
    stl = tmp_path / "stl"
    stl.write_text("solid gt\nendsolid gt\n")
    assert detect_format(stl, "gt.stl", SUPPORTED_GROUND_TRUTH_FORMATS) == "stl"
    with pytest.raises(UnsupportedMediaType, match="'.stl' files"):
        detect_format(stl, "gt.stl", SUPPORTED_POINT_FORMATS)
