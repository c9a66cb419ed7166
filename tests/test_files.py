"""The one atomic writer: old content or new, never a mix, and one line naming the file when the disk refuses."""

import os
import subprocess
import sys
import textwrap

import pytest

from vjgan.errors import OutputError
from vjgan.files import PARTIAL_SUFFIX, atomic_path, failure_reason, write_atomic


def test_write_atomic_replaces_content_and_leaves_no_partial(tmp_path):
    path = tmp_path / "index.json"
    write_atomic(path, "old", "the index")
    write_atomic(path, b"new", "the index")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_failed_block_keeps_old_content_and_removes_partial(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="stopped mid-write"), atomic_path(path, "the config") as partial:
        partial.write_text("half")
        raise RuntimeError("stopped mid-write")
    assert path.read_text() == "old"
    assert not (tmp_path / ("config.toml" + PARTIAL_SUFFIX)).exists()


def test_file_size_limit_is_one_error_naming_the_file_and_old_content_survives(tmp_path):
    """A real EFBIG from the kernel (RLIMIT_FSIZE in a child process), for a plain write and for safetensors."""
    script = textwrap.dedent(f"""
        import resource, torch
        from safetensors.torch import save_file
        from vjgan.errors import OutputError
        from vjgan.files import atomic_path, write_atomic
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        for name, write in [
            ("plain.bin", lambda path: write_atomic(path, b"x" * 10000, "the plain file")),
            ("weights.safetensors", lambda path: save_file({{"w": torch.zeros(10000)}}, str(path))),
        ]:
            path = {str(tmp_path)!r} + "/" + name
            open(path, "wb").write(b"old")
            try:
                if name.endswith(".bin"):
                    write(path)
                else:
                    with atomic_path(path, "the weights") as partial:
                        write(partial)
            except OutputError as error:
                print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path}/plain.bin: cannot write the plain file (File too large)")
    assert lines[1].startswith(f"{tmp_path}/weights.safetensors: cannot write the weights (File too large)")
    assert (tmp_path / "plain.bin").read_bytes() == b"old"
    assert (tmp_path / "weights.safetensors").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.bin", "weights.safetensors"]


def test_text_holding_a_name_that_is_not_utf8_is_one_error_quoting_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("old")
    name = os.fsdecode(b"/data/caf\xe9/techno")  # as Python gives a non-UTF-8 path: a lone surrogate
    with pytest.raises(OutputError) as caught:
        write_atomic(path, f'store = "{name}"\n', "the run's config")
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot write the run's config") and "caf\\xe9" in message and "\n" not in message
    assert path.read_text() == "old"


def test_failure_reason_reads_safetensors_errno():
    from safetensors import SafetensorError

    assert failure_reason(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")) == (
        "No space left on device"
    )
    assert isinstance(OutputError("x"), Exception)
