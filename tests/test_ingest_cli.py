"""`vjgan ingest` as a user meets it: problem lines, the summary table, exit codes, kills, permissions."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import gradient_frames, write_video

from vjgan.cli import main
from vjgan.footage.store import FrameStore

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # from <linux/prctl.h>, <linux/capability.h>


def clip(path: Path, n_frames: int = 6, seed: int = 0, width: int = 32, height: int = 24, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, gradient_frames(n_frames, width, height, seed=seed), **options)


def vjgan_ingest(capsys, *args) -> tuple[int, str]:
    code = main(["ingest", *map(str, args)])
    return code, capsys.readouterr().err


def test_problems_are_printed_one_line_each_with_a_summary_table_and_success(tmp_path, capsys):
    clip(tmp_path / "in/strobe/good.mp4", 9)
    empty = tmp_path / "in/strobe/empty.mp4"
    empty.touch()
    clip(tmp_path / "in/ambient/calm.mp4", 4, seed=1)
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    assert code == 0
    problem_lines = [line for line in err.splitlines() if str(empty) in line]
    assert len(problem_lines) == 1 and "empty file" in problem_lines[0]
    table_rows = {line.split("│")[1].strip(): line for line in err.splitlines() if line.count("│") > 5}
    assert table_rows.keys() == {"ambient", "strobe"}
    assert [cell.strip() for cell in table_rows["strobe"].split("│")[2:6]] == [
        "1",
        "0",
        "1",
        "9",
    ]  # added, in store, failed, frames


def test_videos_outside_genre_folders_are_named_with_the_way_to_ingest_them(tmp_path, capsys):
    clip(tmp_path / "in/g/a.mp4")
    clip(tmp_path / "in/loose one.mp4", seed=1)
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    [line] = [line for line in err.splitlines() if "loose one.mp4" in line]
    assert code == 0 and "not ingested" in line and "--genre NAME" in line


def test_exit_code_is_1_only_when_nothing_at_all_was_ingested(tmp_path, capsys):
    (tmp_path / "in/g").mkdir(parents=True)
    (tmp_path / "in/g/text.mp4").write_text("no video here")
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    assert code == 1 and "nothing was ingested" in err
    clip(tmp_path / "in/g/real.mp4")
    assert vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")[0] == 0
    assert vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")[0] == 0  # all stored already


def test_flags_reach_the_store(tmp_path, capsys):
    clip(tmp_path / "flat/fast.mp4", 12, fps=60)
    code, _ = vjgan_ingest(
        capsys, tmp_path / "flat", "--out", tmp_path / "data", "--genre", "loops", "--size", "20", "--fps", "0", "--crop", "full"
    )
    store = FrameStore.open(tmp_path / "data/loops")
    assert code == 0 and (store.size_px, store.fps, store.crop, len(store)) == ((20, 20), None, "full", 12)


def test_other_settings_for_an_existing_store_get_a_one_line_refusal(tmp_path, capsys):
    clip(tmp_path / "in/g/a.mp4")
    vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "32")
    error_lines = [line for line in err.splitlines() if line.startswith("vjgan: error:")]
    assert code == 1 and len(error_lines) == 1 and "--size 16" in error_lines[0] and "Traceback" not in err


def without_root_file_access() -> None:
    """In a child before exec: drop the capabilities that let root read any file, for good (bounding set)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def test_an_unreadable_file_is_reported_and_the_rest_ingested(tmp_path):
    """A real permission failure: a mode-000 file, read by a process that permissions apply to (as root:
    one without root's file-access capabilities)."""
    clip(tmp_path / "in/g/ok.mp4")
    locked = clip(tmp_path / "in/g/locked.mp4", seed=1)
    locked.chmod(0)
    done = subprocess.run(
        [sys.executable, "-m", "vjgan", "ingest", str(tmp_path / "in"), "--out", str(tmp_path / "data"), "--size", "16"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=without_root_file_access if os.geteuid() == 0 else None,
    )
    assert done.returncode == 0, done.stderr
    assert f"{locked}: permission denied" in done.stderr
    assert [s.source for s in FrameStore.open(tmp_path / "data/g").shards] == ["ok.mp4"]


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_an_interrupted_ingest_leaves_a_consistent_store_and_the_next_run_completes(tmp_path, stop_signal):
    for k in range(3):
        clip(tmp_path / f"in/g/clip{k}.mkv", 240, seed=k, width=160, height=120, options={"preset": "ultrafast"})
    command = [sys.executable, "-m", "vjgan", "ingest", str(tmp_path / "in"), "--out", str(tmp_path / "data"), "--size", "16"]
    store = tmp_path / "data/g"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # stop it mid-shard, after a finished one
        if (store / "manifest.json").exists() and any(p.name.endswith(".partial") for p in store.iterdir()):
            break
        time.sleep(0.002)
    assert process.poll() is None, f"ingest ended before it could be interrupted: {process.communicate()[1][-2000:]}"
    os.kill(process.pid, stop_signal)
    _, stderr = process.communicate(timeout=60)
    if stop_signal == signal.SIGINT:
        assert process.returncode == 130 and b"re-run the same command" in stderr
        assert not any(p.name.endswith(".partial") for p in store.iterdir())  # cleaned up on the way out

    listed = json.loads((store / "manifest.json").read_text())["shards"]
    assert 1 <= len(listed) < 3
    assert FrameStore.open(store).all_frames().shape == (240 * len(listed), 16, 16, 3)  # every listed shard whole

    assert subprocess.run(command, capture_output=True).returncode == 0
    completed = FrameStore.open(store)
    assert sorted(s.source for s in completed.shards) == ["clip0.mkv", "clip1.mkv", "clip2.mkv"] and len(completed) == 720
    assert {p.name for p in store.iterdir() if not p.name.startswith(".")} == {
        "manifest.json",
        *(s.file for s in completed.shards),
    }


def test_an_output_folder_that_cannot_be_made_is_a_one_line_error(tmp_path, capsys):
    clip(tmp_path / "in/g/a.mp4")
    (tmp_path / "taken").write_text("a file where the data folder should go")
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "taken", "--size", "16")
    assert (
        code == 1
        and f"{tmp_path / 'taken' / 'g'}: cannot write the frame store (Not a directory)" in err
        and "Traceback" not in err
    )


def test_a_linked_folder_loop_is_walked_once(tmp_path, capsys):
    clip(tmp_path / "in/g/a.mp4")
    (tmp_path / "in/g/again").symlink_to(tmp_path / "in/g", target_is_directory=True)
    code, _ = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    assert code == 0 and [s.source for s in FrameStore.open(tmp_path / "data/g").shards] == ["a.mp4"]


def test_names_of_any_bytes_are_ingested_one_by_one_and_print_on_one_line_each(tmp_path, capsys):
    """Non-UTF-8 bytes, a newline, a leading dash, quotes, markup-like brackets and a 255-byte name, in a
    genre folder that is not UTF-8 either: every good one is stored under its exact name, the bad one
    (an empty file with a newline in its name) is one escaped problem line, and the table row is one line."""
    genre = tmp_path / "in" / os.fsdecode(b"g\xe9nre")
    names = [os.fsdecode(b"caf\xe9.mp4"), "new\nline.mp4", "-x.mp4", 'it\'s "quoted" [bold].mp4', "a" * 251 + ".mp4"]
    for index, name in enumerate(names):
        clip(genre / name, 3, seed=index)
    (genre / "empty\nname.mp4").touch()
    code, err = vjgan_ingest(capsys, tmp_path / "in", "--out", tmp_path / "data", "--size", "16")
    assert code == 0, err
    store = FrameStore.open(tmp_path / "data" / genre.name)
    assert sorted(s.source for s in store.shards) == sorted(names) and len(store) == 15
    [problem] = [line for line in err.splitlines() if line.startswith("problem:")]
    assert problem.endswith("g\\xe9nre/empty\\x0aname.mp4: empty file (0 bytes)")
    [row] = [line for line in err.splitlines() if "g\\xe9nre" in line and line.count("│") > 5]
    assert [cell.strip() for cell in row.split("│")[2:5]] == ["5", "0", "1"]
    assert "Traceback" not in err and "\udce9" not in err
