"""The snapshot store: appendable uint8 rows + index, consistent after a kill, truncatable for resume."""

import json

import numpy as np
import pytest
from PIL import Image

from vjgan.errors import RunError
from vjgan.run.snapshots import SnapshotStore, grid, write_preview

BANK, SIZE = 4, (8, 12)


def row(value: int) -> np.ndarray:
    return np.full((BANK, *SIZE, 3), value, np.uint8)


def test_appended_snapshots_read_back_in_order_with_their_images_seen(tmp_path):
    store = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE)
    for i, seen in enumerate((0, 5000, 10000)):
        store.append(seen, row(i * 10))
    reader = SnapshotStore.open(tmp_path)
    assert (len(reader), reader.bank_size, reader.size_px) == (3, BANK, SIZE)
    assert reader.images_seen == [0, 5000, 10000]
    frames = reader.frames()
    assert frames.shape == (3, BANK, *SIZE, 3) and frames.dtype == np.uint8
    assert [int(f[0, 0, 0, 0]) for f in frames] == [0, 10, 20]
    assert np.array_equal(reader.frames(1, 2)[0], row(10))


def test_bytes_past_the_index_after_a_kill_are_ignored_then_overwritten(tmp_path):
    store = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE)
    store.append(0, row(1))
    with open(tmp_path / "snapshots" / "frames.u8", "ab") as file:  # a killed append: data but no index entry
        file.write(row(99).tobytes()[:100])
    reopened = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE)
    assert len(reopened) == 1
    reopened.append(80, row(2))
    assert np.array_equal(SnapshotStore.open(tmp_path).frames(), np.stack([row(1), row(2)]))


def test_truncate_forgets_snapshots_after_a_checkpoint(tmp_path):
    store = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE)
    for i, seen in enumerate((0, 80, 160, 240)):
        store.append(seen, row(i))
    store = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE, images_seen=160)  # resuming from a checkpoint at 160
    assert SnapshotStore.open(tmp_path).images_seen == [0, 80, 160]
    store.append(240, row(7))  # the resumed run writes its own next snapshot in place
    assert int(SnapshotStore.open(tmp_path).frames()[-1, 0, 0, 0, 0]) == 7


def test_a_store_of_another_bank_or_size_is_refused(tmp_path):
    SnapshotStore.open_for_writing(tmp_path, BANK, SIZE).append(0, row(0))
    with pytest.raises(RunError, match="--force"):
        SnapshotStore.open_for_writing(tmp_path, BANK * 2, SIZE)


def test_missing_or_damaged_snapshots_are_run_errors(tmp_path):
    with pytest.raises(RunError, match="no snapshots"):
        SnapshotStore.open(tmp_path)
    store = SnapshotStore.open_for_writing(tmp_path, BANK, SIZE)
    store.append(0, row(0))
    (tmp_path / "snapshots" / "frames.u8").write_bytes(b"short")
    with pytest.raises(RunError, match="shorter than its index"):
        SnapshotStore.open(tmp_path).frames()
    (tmp_path / "snapshots" / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(RunError, match="index.json"):
        SnapshotStore.open(tmp_path)


def test_grid_tiles_a_snapshot_row_major_and_pads_with_black():
    frames = np.stack([np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    image = grid(frames)  # 5 frames -> 3 columns, 2 rows
    assert image.shape == (4, 9, 3)
    assert image[0, 0, 0] == 10 and image[0, 3, 0] == 20 and image[0, 6, 0] == 30
    assert image[2, 0, 0] == 40 and image[2, 3, 0] == 50 and image[2, 6, 0] == 0


def test_preview_png_shows_the_grid(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (BANK, *SIZE, 3), dtype=np.uint8)
    write_preview(tmp_path / "preview.png", frames)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "preview.png")), grid(frames))
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]
