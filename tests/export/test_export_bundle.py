"""Our TF V2 bundle reader: against TensorFlow's own reader, and on damaged or hostile files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_writer import write_bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gansynth_instrument.errors import CheckpointError
from gansynth_instrument.export.bundle import TensorBundle, _parse_entry

BUNDLES = ["stage_00012/model.ckpt-54", "stage_00011/model.ckpt-46"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_reader_agrees_with_tensorflow(magenta_tiny: Path, bundle: str) -> None:
    import tensorflow as tf  # the 'test' extra installs tensorflow-cpu for this check

    prefix = magenta_tiny / bundle
    theirs = tf.train.load_checkpoint(str(prefix))
    ours = TensorBundle(prefix)
    shapes = theirs.get_variable_to_shape_map()
    assert set(ours.entries) == set(shapes)
    for name, shape in shapes.items():
        value = ours.read(name)
        expected = theirs.get_tensor(name)
        assert value.shape == tuple(shape)
        assert value.dtype == expected.dtype, name
        np.testing.assert_array_equal(value, expected, err_msg=name)


def test_round_trip_through_test_writer(tmp_path: Path) -> None:
    tensors = {
        "a/kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "b": np.array(7, np.int64),
        "c/half": np.linspace(-1, 1, 5).astype(np.float16),
        "empty": np.zeros((0, 3), np.float64),
    }
    write_bundle(tmp_path / "m", tensors)
    bundle = TensorBundle(tmp_path / "m")
    assert set(bundle.entries) == set(tensors)
    for name, value in tensors.items():
        got = bundle.read(name)
        assert got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)


def test_entry_pointing_past_the_data_file(tmp_path: Path) -> None:
    tensors = {"w": np.ones((4, 4), np.float32)}
    write_bundle(tmp_path / "m", tensors, layout={"w": (1 << 40, 64)})
    with pytest.raises(CheckpointError, match=r"m\.data-00000-of-00001: truncated or corrupt"):
        TensorBundle(tmp_path / "m")


def test_entry_size_disagreeing_with_its_shape(tmp_path: Path) -> None:
    write_bundle(tmp_path / "m", {"w": np.ones((4, 4), np.float32)}, layout={"w": (0, 60)})
    with pytest.raises(CheckpointError, match=r"'w' has 60 bytes, its shape \[4, 4\] needs 64"):
        TensorBundle(tmp_path / "m")


def test_missing_index_and_short_index(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"m\.index: cannot read"):
        TensorBundle(tmp_path / "m")
    (tmp_path / "m.index").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="too short"):
        TensorBundle(tmp_path / "m")


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory, magenta_tiny: Path) -> Path:
    dest = tmp_path_factory.mktemp("bundle")
    for f in (magenta_tiny / "stage_00012").glob("model.ckpt-54.*"):
        shutil.copyfile(f, dest / f.name)
    return dest / "model.ckpt-54"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_index_raises_only_checkpoint_error(
    fixture_copy: Path, data: st.DataObject
) -> None:
    """Random byte damage in a real index: the reader opens it or says why, never crashes."""
    index = fixture_copy.with_name(fixture_copy.name + ".index")
    original = index.read_bytes()
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    index.write_bytes(bytes(damaged))
    try:
        bundle = TensorBundle(fixture_copy)
        for name in bundle.entries:
            bundle.read(name)
    except CheckpointError:
        pass
    finally:
        index.write_bytes(original)


@pytest.mark.parametrize(
    ("proto", "problem"),
    [
        (b"\x10\x05", "field 2 not a message"),  # shape as a varint
        (b"\x0a\x01x", "field 1 not a number"),  # dtype as bytes
        (b"\x12\x0d\x12\x0b\x08" + b"\xff" * 9 + b"\x01", "negative dimension"),  # dim -1
        (b"\x12\x02\x18\x01", "unknown rank"),
        (b"\x3a\x00", "partitioned into slices"),
        (b"\x12\x05\x12\x03\x08\xff", "runs past the end"),  # truncated varint
        (b"\x0b", "wire type 3"),
    ],
)
def test_malformed_entry_protos(proto: bytes, problem: str) -> None:
    with pytest.raises(CheckpointError, match=f"^m.index: .*{problem}"):
        _parse_entry("w", memoryview(proto), "m.index")
