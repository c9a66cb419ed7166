"""The run directory's files other than checkpoints and snapshots: config, log, noise bank, charts.

Layout (docs/interfaces.md): `config.toml`, `log.jsonl`, `noise_bank.safetensors`, `checkpoints/`,
`snapshots/`, `preview.png`, `loss.png`. Everything here is written by rank 0 only.
"""

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from vjgan.errors import RunError
from vjgan.plot import line_chart_png
from vjgan.train.config import TrainConfig, read_config_toml, run_setting_changes, write_config_toml


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.log_path = self.path / "log.jsonl"
        self.noise_bank_path = self.path / "noise_bank.safetensors"
        self.preview_path = self.path / "preview.png"
        self.loss_plot_path = self.path / "loss.png"

    def prepare(self, config: TrainConfig, force: bool, settings_may_change: bool) -> None:
        """Create (or re-open) the run for `config`; a run made with other settings is refused.

        `force` starts the run over; `settings_may_change` (resuming from a chosen checkpoint)
        lets the new settings replace the old ones, as after a NaN.
        """
        self._check_writable()
        if self.config_path.exists():
            changes = run_setting_changes(read_config_toml(self.config_path), config)
            if force:
                self._start_over()
            elif changes and not settings_may_change:
                raise RunError(
                    f"{self.config_path}: this run was created with other settings ({'; '.join(changes)}); "
                    "re-run with the run's settings, use another --run directory, or --force to start it over"
                )
        write_config_toml(config, self.config_path)

    def _check_writable(self) -> None:
        probe = self.path / ".write-test"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise RunError(f"{self.path}: cannot write the run directory ({error.strerror}); choose another --run") from None

    def _start_over(self) -> None:
        """Delete what a previous run with this name wrote (and nothing else found in the folder)."""
        for folder in ("checkpoints", "snapshots"):
            shutil.rmtree(self.path / folder, ignore_errors=True)
        for path in (self.config_path, self.log_path, self.noise_bank_path, self.preview_path, self.loss_plot_path):
            path.unlink(missing_ok=True)

    def append_log(self, record: dict) -> None:
        with open(self.log_path, "a") as file:
            file.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        """Complete records of log.jsonl (a line cut short by a killed process is dropped)."""
        if not self.log_path.exists():
            return []
        records = []
        for line in self.log_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_log(self, images_seen: int) -> None:
        """Keep the records up to `images_seen`: those after it belong to training a resume repeats."""
        kept = [record for record in self.read_log() if record["images_seen"] <= images_seen]
        temporary = self.log_path.with_name(self.log_path.name + ".tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in kept))
        os.replace(temporary, self.log_path)

    def write_noise_bank(self, noise_bank: torch.Tensor) -> None:
        """The bank (N, z_dim) in Gaussian space (convert with `latent_from_gaussian`), for renderers
        that want to start from the faces the run's snapshots show."""
        temporary = self.noise_bank_path.with_name(self.noise_bank_path.name + ".tmp")
        save_file({"noise_bank": noise_bank.detach().cpu().contiguous()}, str(temporary))
        os.replace(temporary, self.noise_bank_path)

    def write_loss_plot(self) -> None:
        records = self.read_log()
        images = [record["images_seen"] for record in records]
        series = {
            "D loss": (images, [record["d_loss"] for record in records]),
            "G loss": (images, [record["g_loss"] for record in records]),
        }
        line_chart_png(self.loss_plot_path, series, f"{self.path.name}: losses", "images seen", "loss")
