"""Bad input to `vjgan render` and `vjgan generate`: one line naming the file or value and the reason,
exit code 1, no traceback, and no clip left behind."""

import numpy as np
import pytest
import soundfile
from render_media import vjgan

from vjgan.render.music import synth_music
from vjgan.run.snapshots import SnapshotStore


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    """The trained run, and runs that lack checkpoints or snapshots."""
    root = tmp_path_factory.mktemp("runs")
    untrained = root / "no-checkpoints"
    SnapshotStore.open_for_writing(untrained, 4, (32, 32)).append(0, np.zeros((4, 32, 32, 3), np.uint8))
    (root / "empty").mkdir()
    no_snapshot = root / "no-snapshots-yet"
    SnapshotStore.open_for_writing(no_snapshot, 4, (32, 32))
    silent = root / "silent.wav"
    soundfile.write(str(silent), np.zeros(22050, np.float32), 22050)
    synth_music(root / "music.wav", seconds=0.5)
    (root / "notes.mp3").write_text("not audio")
    (root / "a-file").write_text("")
    return {"trained": tiny_run, "root": root}


CASES = [
    (["render", "loop", "{root}/missing"], "{root}/missing: no such run directory"),
    (["render", "progress", "{root}/missing"], "{root}/missing: no such run directory"),
    (["generate", "{root}/missing"], "{root}/missing: no such run directory"),
    (["render", "walk", "{root}/no-checkpoints"], "{root}/no-checkpoints: the run has no checkpoints yet"),
    (["render", "progress", "{root}/empty"], "{root}/empty: no snapshots"),
    (["render", "progress", "{root}/no-snapshots-yet"], "{root}/no-snapshots-yet: no snapshots yet"),
    (["render", "progress", "{trained}", "--from", "999999"], "no snapshot between 999,999"),
    (["render", "progress", "{trained}", "--layout", "single", "--sample", "99"], "only 16 samples"),
    (["render", "audio", "{trained}", "--audio", "{root}/notes.mp3"], "{root}/notes.mp3: not a readable audio file"),
    (["render", "audio", "{trained}", "--audio", "{root}/silent.wav"], "{root}/silent.wav: the audio is silent"),
    (["render", "audio", "{trained}", "--audio", "{root}/gone.mp3"], "{root}/gone.mp3: no such audio file"),
    (["render", "audio", "{trained}", "--audio", "{root}/silent.wav", "--effects", "blur"], "effects blur: unknown"),
    (["render", "audio", "{trained}", "--audio", "{root}/music.wav", "--format", "gif"], "cannot carry the audio track"),
    (["render", "loop", "{trained}", "--codec", "vp9"], "codec 'vp9': unknown"),
    (["render", "loop", "{trained}", "--format", "avi"], "format 'avi': unknown"),
    (["render", "loop", "{trained}", "--codec", "prores", "--out", "{root}/clip.mp4"], "codec prores cannot be written as mp4"),
    (["render", "loop", "{trained}", "--size", "1920by1080"], "size '1920by1080': not WIDTHxHEIGHT"),
    (["render", "loop", "{trained}", "--size", "16000x9000"], "size 16000x9000: larger than 7680x4320"),
    (["render", "loop", "{trained}", "--seconds", "0"], "seconds 0.0: must be a positive number"),
    (["render", "walk", "{trained}", "--keyframes", "1"], "keyframes 1: a walk needs at least 2"),
    (["render", "loop", "{trained}", "--out", "{root}/a-file/clip.mp4"], "{root}/a-file/clip.mp4: cannot create its folder"),
    (["generate", "{trained}", "--count", "0"], "count 0"),
]


def clips_in(run) -> list[str]:
    return sorted(path.name for path in (run / "clips").glob("*"))


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(args[:2] + args[3:]) for args, _ in CASES])
def test_bad_input_is_one_line_without_traceback_and_writes_no_clip(runs, capsys, args, message):
    names = {"root": runs["root"], "trained": runs["trained"]}
    clips_before = clips_in(runs["trained"])
    code, err = vjgan(capsys, *[arg.format(**names) for arg in args])
    lines = err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("vjgan: error: ") and message.format(**names) in lines[0]
    assert clips_in(runs["trained"]) == clips_before
    assert not list(runs["root"].rglob("*.partial"))
