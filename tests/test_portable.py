"""Portable by construction: locks between real processes (vjgan.locks), names Windows accepts, no bare fcntl."""

import subprocess
import sys
import textwrap
import time

import pytest
from media import gradient_frames, write_video

from vjgan.errors import FootageError
from vjgan.files import portable_name
from vjgan.footage.ingest import IngestConfig, ingest, store_folders
from vjgan.footage.store import FrameStore, StoreSettings, StoreWriter

# Names Windows refuses, and what vjgan makes of them.
FORBIDDEN = {
    "CON": "_CON",
    "nul": "_nul",
    "COM1": "_COM1",
    "lpt9": "_lpt9",
    "CON.mp4": "_CON.mp4",
    "aux .txt": "_aux .txt",
    "a:b?": "a_b_",
    'x<y>z"|*': "x_y_z_",
    "back\\slash/slash": "back_slash_slash",
    "x.": "x",
    "x ": "x",
    "x. . ": "x",
    "tab\there": "tab_here",
    "": "unnamed",
    "..": "unnamed",
}


@pytest.mark.parametrize("text", FORBIDDEN)
def test_names_windows_refuses_become_legal_ones(text):
    assert portable_name(text) == FORBIDDEN[text]
    assert portable_name(FORBIDDEN[text]) == FORBIDDEN[text]  # a legal name is kept as it is


@pytest.mark.parametrize("text", ["Techno Düsseldorf", "CONSOLE", "LPT10", "con-cert", ".hidden", "a" * 100])
def test_legal_names_are_kept(text):
    assert portable_name(text) == text


def test_long_names_are_cut_to_a_length_every_system_takes():
    assert portable_name("a" * 300 + ".mp4") == "a" * 100


@pytest.mark.parametrize("source", ["a:b?.mp4", "CON.mp4", "nul", "x. .mp4", "x .mov", "sets/aux.mp4", "<>|*.mkv"])
def test_shard_names_from_hostile_sources_are_legal(tmp_path, source):
    with StoreWriter(tmp_path / "g", "g", StoreSettings((8, 8), 30.0, "center")) as writer:
        shard = writer.new_shard(source)
        assert portable_name(shard.path.name) == shard.path.name
        shard.discard()


def test_genre_stores_get_legal_folders_named_after_the_genre(tmp_path):
    for genre in ("aux", "a:b?", "Techno. "):
        path = tmp_path / "footage" / genre / "clip.mp4"
        path.parent.mkdir(parents=True)
        write_video(path, gradient_frames(3, 32, 24))
    report = ingest(tmp_path / "footage", tmp_path / "data", IngestConfig(size_px=16, fps=30.0, crop="center"))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["Techno", "_aux", "a_b_"]
    assert [(g.genre, g.store_path.name) for g in report.genres] == [("Techno. ", "Techno"), ("a:b?", "a_b_"), ("aux", "_aux")]
    assert FrameStore.open(tmp_path / "data" / "a_b_").genre == "a:b?"  # the manifest keeps the genre's own name


@pytest.mark.parametrize("genres", [["Techno", "techno"], ["a:b", "a_b"], ["x.", "X"]])
def test_genres_that_would_share_a_folder_on_windows_are_refused(tmp_path, genres):
    with pytest.raises(FootageError, match=f"^{tmp_path}/{genres[1]}: its store would share the folder") as error:
        store_folders(tmp_path, genres)
    assert "\n" not in str(error.value)


def test_every_module_imports_without_fcntl(tmp_path):
    """What runs on Windows: no module needs fcntl (vjgan.__main__ is left out: importing it runs the CLI)."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        sys.modules["fcntl"] = None  # as on Windows: `import fcntl` raises ImportError
        import vjgan
        names = [m.name for m in pkgutil.walk_packages(vjgan.__path__, "vjgan.") if m.name != "vjgan.__main__"]
        for name in names:
            importlib.import_module(name)
        assert "fcntl" not in sys.modules or sys.modules["fcntl"] is None
        print(len(names))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 40


def test_a_waiting_lock_waits_for_the_holder_and_takes_over_when_it_is_killed(tmp_path):
    """vjgan.locks.wait_lock (render/audio.py's numba cache lock) between two real processes."""
    hold = (
        "import sys, time; from vjgan.locks import wait_lock\n"
        "lock = wait_lock(sys.argv[1]); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "x.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        waiter = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "x.lock")], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)
            assert waiter.poll() is None  # still waiting
            holder.kill()  # SIGKILL: no clean-up runs, the system frees the lock
            assert waiter.stdout.readline() == "held\n"
        finally:
            waiter.kill()
            waiter.wait()
    finally:
        holder.kill()
        holder.wait()
