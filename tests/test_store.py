"""footage/store.py: shards written in a stream, an atomic manifest, memory-mapped reading."""

import json
import os
import tracemalloc

import numpy as np
import pytest

from vjgan.errors import OutputError, StoreError
from vjgan.footage.store import NPY_HEADER_BYTES, FrameStore, ShardInfo, ShardWriter, StoreSettings, StoreWriter, npy_header

SETTINGS = StoreSettings((8, 8), 30.0, "center")


def shard_info(source: str, fingerprint: str) -> ShardInfo:
    return ShardInfo("", source, fingerprint, 0, 30.0, (64, 48), False)


def constant_frames(n_frames: int, value: int, size: int = 8) -> np.ndarray:
    return np.full((n_frames, size, size, 3), value, np.uint8)


def write_store(path, shards: list[np.ndarray], settings: StoreSettings = SETTINGS):
    """A store holding one shard per array, through the writer ingest uses."""
    with StoreWriter(path, path.name, settings) as writer:
        for index, frames in enumerate(shards):
            shard = writer.new_shard(f"clip{index}.mp4")
            for frame in frames:
                shard.append(frame)
            writer.commit(shard, shard_info(f"clip{index}.mp4", f"sha256:{index}"))
    return path


def test_a_streamed_shard_is_a_plain_npy_file(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    writer = ShardWriter(tmp_path / "0001-a.npy", (8, 8, 3))
    for frame in frames:
        writer.append(frame)
    writer.commit()
    assert np.array_equal(np.load(tmp_path / "0001-a.npy"), frames)
    assert (tmp_path / "0001-a.npy").stat().st_size == NPY_HEADER_BYTES + frames.nbytes
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("frames", [0, 7, 10**12])
def test_the_npy_header_has_one_size_for_any_frame_count(frames):
    assert len(npy_header((frames, 1024, 1024, 3))) == NPY_HEADER_BYTES


def test_an_unfinished_shard_is_invisible_and_discard_removes_it(tmp_path):
    writer = ShardWriter(tmp_path / "0001-a.npy", (8, 8, 3))
    writer.append(constant_frames(1, 3)[0])
    assert not (tmp_path / "0001-a.npy").exists()
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_open_gives_settings_length_and_shard_positions(tmp_path):
    store = FrameStore.open(write_store(tmp_path / "particles", [constant_frames(3, 10), constant_frames(4, 20)]))
    assert (store.genre, store.size_px, store.fps, store.crop, len(store)) == ("particles", (8, 8), 30.0, "center", 7)
    assert [(s.source, s.frames, s.start) for s in store.shards] == [("clip0.mp4", 3, 0), ("clip1.mp4", 4, 3)]
    assert store.shards[0].file.endswith(".npy") and store.shards[0].fingerprint == "sha256:0"


def test_all_frames_is_one_contiguous_copy_in_shard_order(tmp_path):
    store = FrameStore.open(write_store(tmp_path / "g", [constant_frames(2, 10), constant_frames(3, 20)]))
    frames = store.all_frames()
    assert frames.shape == (5, 8, 8, 3) and frames.flags.c_contiguous and frames.flags.writeable
    assert list(frames[:, 0, 0, 0]) == [10, 10, 20, 20, 20]


def test_sample_draws_uniformly_over_all_frames(tmp_path):
    store = FrameStore.open(write_store(tmp_path / "g", [constant_frames(30, 10), constant_frames(10, 200)]))
    batch = store.sample(4000, np.random.default_rng(0))  # more than the store holds: with replacement
    assert batch.shape == (4000, 8, 8, 3) and batch.dtype == np.uint8
    assert np.mean(batch[:, 0, 0, 0] == 200) == pytest.approx(0.25, abs=0.03)


def test_sample_of_at_most_the_store_size_draws_distinct_frames(tmp_path):
    frames = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    store = FrameStore.open(write_store(tmp_path / "g", [frames[:5], frames[5:]]))
    batch = store.sample(12, np.random.default_rng(1))
    assert sorted(batch[:, 0, 0, 0]) == list(range(12))


def test_sample_is_reproducible_from_the_generator(tmp_path):
    store = FrameStore.open(write_store(tmp_path / "g", [np.random.default_rng(2).integers(0, 256, (20, 8, 8, 3), np.uint8)]))
    first = store.sample(6, np.random.default_rng(7))
    assert np.array_equal(first, store.sample(6, np.random.default_rng(7)))
    assert not np.array_equal(first, store.sample(6, np.random.default_rng(8)))


def test_a_100k_frame_store_opens_and_samples_without_reading_its_pixels(tmp_path):
    path = tmp_path / "big"
    path.mkdir()
    n_frames = 100_000
    with open(path / "0001-big.npy", "wb") as file:  # a sparse 2.8 GB shard: costs no disk
        file.write(npy_header((n_frames, 96, 96, 3)))
        file.truncate(NPY_HEADER_BYTES + n_frames * 96 * 96 * 3)
    manifest = {
        "format": "vjgan-frame-store",
        "version": 1,
        "genre": "big",
        "size_px": [96, 96],
        "fps": 30.0,
        "crop": "center",
        "shards": [
            {
                "file": "0001-big.npy",
                "source": "big.mp4",
                "fingerprint": "sha256:x",
                "frames": n_frames,
                "source_fps": 30.0,
                "source_size_wh": [1920, 1080],
                "truncated": False,
            }
        ],
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    tracemalloc.start()
    try:
        store = FrameStore.open(path)
        batch = store.sample(64, np.random.default_rng(0))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == n_frames and batch.shape == (64, 96, 96, 3)
    assert peak_bytes < 64 * 96 * 96 * 3 * 4  # the batch and a little; the store is 2.8 GB


# -- refusing what is wrong ---------------------------------------------------------------------------


def test_open_refuses_a_missing_folder(tmp_path):
    with pytest.raises(StoreError, match="no such frame store"):
        FrameStore.open(tmp_path / "nope")


def test_open_on_the_data_folder_names_the_genre_stores_in_it(tmp_path):
    write_store(tmp_path / "data" / "particles", [constant_frames(2, 1)])
    with pytest.raises(StoreError, match="particles"):
        FrameStore.open(tmp_path / "data")


def test_open_refuses_a_damaged_manifest(tmp_path):
    path = write_store(tmp_path / "g", [constant_frames(2, 1)])
    (path / "manifest.json").write_text('{"format": "vjgan-frame-store", "version": 1, "shards": [')
    with pytest.raises(StoreError, match="manifest.json: not a readable"):
        FrameStore.open(path)


def test_open_refuses_a_missing_or_cut_shard(tmp_path):
    path = write_store(tmp_path / "g", [constant_frames(2, 1), constant_frames(3, 2)])
    [first, second] = FrameStore.open(path).shards
    with open(path / second.file, "r+b") as file:
        file.truncate(NPY_HEADER_BYTES + 100)
    with pytest.raises(StoreError, match="damaged"):
        FrameStore.open(path)
    (path / first.file).unlink()
    with pytest.raises(StoreError, match="missing"):
        FrameStore.open(path)


def test_open_refuses_an_empty_store(tmp_path):
    path = tmp_path / "g"
    path.mkdir()
    manifest = {
        "format": "vjgan-frame-store",
        "version": 1,
        "genre": "g",
        "size_px": [8, 8],
        "fps": 30.0,
        "crop": "center",
        "shards": [],
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="empty"):
        FrameStore.open(path)


def test_the_writer_refuses_a_store_made_with_other_settings(tmp_path):
    path = write_store(tmp_path / "g", [constant_frames(2, 1)])
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(StoreError, match="--size 8 --fps 30 --crop center, not --size 8 --fps 24 --crop center"):
        StoreWriter(path, "g", StoreSettings((8, 8), 24.0, "center"))
    assert (path / "manifest.json").read_bytes() == before


def test_the_writer_removes_what_an_interrupted_run_left(tmp_path):
    path = write_store(tmp_path / "g", [constant_frames(2, 1)])
    (path / "0002-half.npy.partial").write_bytes(b"\x93NUMPY half a shard")
    (path / "0002-older.npy.part").write_bytes(b"\x93NUMPY half a shard, named as before issue 12")
    (path / "manifest.json.partial").write_text('{"half": ')
    (path / "0003-unlisted.npy").write_bytes(npy_header((0, 8, 8, 3)))  # renamed, manifest never updated
    (path / "notes.txt").write_text("mine")
    with StoreWriter(path, "g", SETTINGS) as writer:
        assert writer.removed_leftovers == [
            "0002-half.npy.partial",
            "0002-older.npy.part",
            "0003-unlisted.npy",
            "manifest.json.partial",
        ]
        shard = writer.new_shard("next.mp4")
        assert shard.path.name == "0002-next.npy"
        shard.discard()
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "0001-clip0.npy",
        "manifest.json",
        "notes.txt",
    ]
    assert len(FrameStore.open(path)) == 2


def test_a_second_writer_is_refused_while_the_first_writes(tmp_path):
    with StoreWriter(tmp_path / "g", "g", SETTINGS):
        with pytest.raises(StoreError, match="another vjgan ingest"):
            StoreWriter(tmp_path / "g", "g", SETTINGS)


def test_a_writer_that_stored_nothing_leaves_no_folder(tmp_path):
    with StoreWriter(tmp_path / "g", "g", SETTINGS):
        pass
    assert not (tmp_path / "g").exists()


def test_shard_names_are_ascii_whatever_the_source_is_called(tmp_path):
    with StoreWriter(tmp_path / "g", "g", SETTINGS) as writer:
        shard = writer.new_shard("Fête de la musique — été 2023.mov")
        assert shard.path.name == "0001-F_te_de_la_musique_t_2023.npy"
        shard.discard()


def test_names_of_any_bytes_round_trip_through_a_valid_utf8_manifest(tmp_path):
    """Names are whatever bytes the file system holds: Latin-1, newlines, quotes, a leading dash."""
    names = [
        os.fsdecode(b"caf\xe9.mp4"),
        "line\nbreak.mp4",
        '-x "quoted" \'.mp4',
        "Fête — 夜.mp4",
        os.fsdecode(b"\xff" * 251 + b".mp4"),
    ]
    genre = os.fsdecode(b"g\xe9nre")
    with StoreWriter(tmp_path / genre, genre, SETTINGS) as writer:
        for index, name in enumerate(names):
            shard = writer.new_shard(name)
            shard.append(constant_frames(1, index)[0])
            writer.commit(shard, shard_info(name, f"sha256:{index}"))
    text = (tmp_path / genre / "manifest.json").read_bytes().decode("utf-8")  # strict: valid UTF-8
    document = json.loads(text)
    assert document["genre"] == "g\\xe9nre" and document["genre_bytes"] == b"g\xe9nre".hex()
    assert "source_bytes" not in document["shards"][1] and document["shards"][0]["source"] == "caf\\xe9.mp4"
    store = FrameStore.open(tmp_path / genre)
    assert store.genre == genre and [shard.source for shard in store.shards] == names
    assert [os.fsencode(shard.source) for shard in store.shards][0] == b"caf\xe9.mp4"


def test_a_manifest_the_disk_refuses_leaves_the_writer_as_the_manifest_on_disk(tmp_path):
    """A real refusal (the manifest's temporary name is taken by a folder): the shard is not listed, the
    writer does not count it, the next shard commits, and the unlisted file is removed at close."""
    path = write_store(tmp_path / "g", [constant_frames(2, 1)])
    before = (path / "manifest.json").read_bytes()
    with StoreWriter(path, "g", SETTINGS) as writer:
        (path / "manifest.json.partial").mkdir()
        shard = writer.new_shard("refused.mp4")
        shard.append(constant_frames(1, 7)[0])
        with pytest.raises(OutputError, match="manifest.json: cannot write the frame store manifest"):
            writer.commit(shard, shard_info("refused.mp4", "sha256:refused"))
        assert (path / "manifest.json").read_bytes() == before and [s.source for s in writer.shards] == ["clip0.mp4"]
        (path / "manifest.json.partial").rmdir()
        shard = writer.new_shard("next.mp4")
        shard.append(constant_frames(1, 9)[0])
        writer.commit(shard, shard_info("next.mp4", "sha256:next"))
    store = FrameStore.open(path)
    assert [s.source for s in store.shards] == ["clip0.mp4", "next.mp4"] and list(store.all_frames()[:, 0, 0, 0]) == [1, 1, 9]
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "0001-clip0.npy",
        "0002-next.npy",
        "manifest.json",
    ]


def test_the_lock_is_taken_before_the_manifest_is_read(tmp_path):
    """A second writer meets the lock first, whatever the store holds: it never reads a manifest being replaced."""
    path = write_store(tmp_path / "g", [constant_frames(2, 1)])
    with StoreWriter(path, "g", SETTINGS):
        for settings in (SETTINGS, StoreSettings((8, 8), 24.0, "center")):
            with pytest.raises(StoreError, match="another vjgan ingest is writing"):
                StoreWriter(path, "g", settings)


def test_two_processes_share_a_store_one_at_a_time_and_a_killed_writer_frees_it(tmp_path):
    """The store lock (vjgan.locks over filelock) between real processes: refused with one line, freed by SIGKILL."""
    import subprocess
    import sys

    path = tmp_path / "g"
    open_writer = (
        "import sys, time\n"
        "from vjgan.errors import StoreError\n"
        "from vjgan.footage.store import StoreSettings, StoreWriter\n"
        "try:\n"
        "    writer = StoreWriter(sys.argv[1], 'g', StoreSettings((8, 8), 30.0, 'center'))\n"
        "except StoreError as error:\n"
        "    sys.exit(str(error))\n"
        "print('writing', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", open_writer, str(path), "600"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "writing\n"
        second = subprocess.run([sys.executable, "-c", open_writer, str(path), "0"], capture_output=True, text=True, timeout=60)
        assert (second.returncode, second.stdout) == (1, "")
        assert second.stderr == f"{path}: another vjgan ingest is writing to this store; wait for it to finish\n"
        holder.kill()  # SIGKILL: the writer never closes; the system frees its lock
        holder.wait()
        third = subprocess.run([sys.executable, "-c", open_writer, str(path), "0"], capture_output=True, text=True, timeout=60)
        assert (third.returncode, third.stdout, third.stderr) == (0, "writing\n", "")
    finally:
        holder.kill()
        holder.wait()
