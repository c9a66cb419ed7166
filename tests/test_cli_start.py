"""`vjgan --help`, `vjgan synth` and `vjgan ingest` start without torch (importing it costs seconds of CPU)."""

import subprocess
import sys

# Runs `vjgan ARGS` in a fresh interpreter, then fails if torch was imported on the way.
RUN_WITHOUT_TORCH = """
import sys
from vjgan.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:  # --help
    code = exit.code
if "torch" in sys.modules:
    sys.exit("torch was imported")
sys.exit(code)
"""


def vjgan_without_torch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT_TORCH, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_help_synth_and_ingest_never_import_torch(tmp_path):
    for args in (["--help"], ["ingest", "--help"], ["synth", "--help"]):
        result = vjgan_without_torch(*args)
        assert result.returncode == 0, (args, result.stderr)
    synth = vjgan_without_torch(
        "synth", tmp_path / "footage", "--seconds", "0.2", "--size", "64x48", "--clips", "1", "--genre", "typo"
    )
    assert synth.returncode == 0, synth.stderr
    ingest = vjgan_without_torch("ingest", tmp_path / "footage", "--out", tmp_path / "data", "--size", "16")
    assert ingest.returncode == 0, ingest.stderr
    assert (tmp_path / "data" / "typo" / "manifest.json").exists()
