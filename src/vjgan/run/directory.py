"""The run directory: the one place that knows a run's layout, through which train/ writes and render/,
evaluate, demo (and the live mode) read.

Layout (docs/interfaces.md), each file with the module that owns its format:
  config.toml             every setting of the run (this module; `TrainConfig` from train.config)
  store.json              the frame store the run learns from, by identity (this module)
  log.jsonl               one record per logging step (this module)
  noise_bank.safetensors  the fixed noise, Gaussian (this module)
  preview.png, loss.png   the newest snapshot as a grid, the loss curves (this module)
  checkpoints/            self-describing safetensors, newest few (run.checkpoint)
  snapshots/              frames.u8 + index.json, the progress video's source (run.snapshots)
  eval.json, swd.png, diversity.png   what `vjgan eval` measured (its report: vjgan.evaluate)
  clips/                  rendered clips (render.clips names them)

Everything here is written by rank 0 only, each file replaced atomically (files.py) except the log,
which is appended to and repaired at resume.

The store is recorded resolved (config.toml) and by identity (`store.json`: genre, settings and the
fingerprints of every source the run has trained on), so a run resumes from any working directory
and a store that moved is recognised by its manifest, not its path.
"""

import dataclasses
import json
import shutil
import tomllib
from pathlib import Path

import torch
from safetensors.torch import save_file

from vjgan.console import console, printable
from vjgan.errors import RunError
from vjgan.files import atomic_path, partial_path, write_atomic, writing
from vjgan.footage.store import read_manifest
from vjgan.model.networks import Generator
from vjgan.plot import line_chart_png
from vjgan.run import checkpoint as ckpt
from vjgan.run.snapshots import SnapshotStore, snapshot_index_path, snapshots_dir
from vjgan.train.config import TrainConfig, config_from_dict, config_to_dict, run_setting_changes

STORE_RECORD = "store.json"


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.toml"
        self.log_path = self.path / "log.jsonl"
        self.noise_bank_path = self.path / "noise_bank.safetensors"
        self.preview_path = self.path / "preview.png"
        self.loss_plot_path = self.path / "loss.png"
        self.store_record_path = self.path / STORE_RECORD
        self.checkpoints_path = ckpt.checkpoints_dir(self.path)
        self.snapshots_path = snapshots_dir(self.path)
        self.snapshot_index_path = snapshot_index_path(self.path)
        self.eval_report_path = self.path / "eval.json"
        self.swd_chart_path = self.path / "swd.png"
        self.diversity_chart_path = self.path / "diversity.png"
        self.clips_path = self.path / "clips"

    def require(self) -> "RunDir":
        """This run, or a RunError when `path` holds none (no config.toml)."""
        if not self.config_path.is_file():
            raise RunError(f"{self.path}: not a vjgan run (no config.toml); give the directory `vjgan train` wrote")
        return self

    def read_config(self) -> TrainConfig:
        return read_config_toml(self.config_path)

    def snapshots(self) -> SnapshotStore:
        """The run's snapshots (RunError when it has none yet)."""
        return SnapshotStore.open(self.path)

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint that reads whole (damaged newer ones are passed over)."""
        return ckpt.latest_checkpoint(self.path)

    def counters(self) -> ckpt.Counters | None:
        """The counters of the newest whole checkpoint (None before the first)."""
        newest = self.latest_checkpoint() if self.path.is_dir() else None
        return ckpt.read_counters(newest) if newest is not None else None

    def load_generator(self, checkpoint: Path | None = None, device="cpu") -> tuple[Generator, TrainConfig]:
        """The EMA generator of the newest (or given) checkpoint, in eval mode, and the run's config."""
        return ckpt.load_generator(self.path, checkpoint, device)

    def prepare(self, config: TrainConfig, force: bool, settings_may_change: bool) -> None:
        """Create (or re-open) the run for `config`; a run made with other settings is refused.

        `force` starts the run over; `settings_may_change` (resuming from a chosen checkpoint)
        lets the new settings replace the old ones, as after a NaN.
        """
        self._check_writable()
        if self.config_path.exists():
            stored = self.read_config()
            changes = run_setting_changes(stored, config)
            if force:
                self._start_over()
            elif changes and not settings_may_change:
                raise RunError(
                    f"{self.config_path}: this run was created with other settings ({'; '.join(changes)}); "
                    "re-run with the run's settings, use another --run directory, or --force to start it over"
                )
            else:
                self.recognise_stores(config.stores, stored.stores)
        write_config_toml(config, self.config_path)
        self._record_stores(config.stores)

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
        for folder in (self.checkpoints_path, self.snapshots_path):
            shutil.rmtree(folder, ignore_errors=True)
        for path in (*self._own_files(), self.store_record_path):
            path.unlink(missing_ok=True)

    def _own_files(self) -> tuple[Path, ...]:
        return (self.config_path, self.log_path, self.noise_bank_path, self.preview_path, self.loss_plot_path)

    def remove_leftovers(self) -> None:
        """Half-written files of a killed process beside the run's own files (`.partial`; `.tmp` from older vjgan)."""
        for path in (*self._own_files(), self.store_record_path, self.snapshot_index_path):
            for leftover in (partial_path(path), path.with_name(path.name + ".tmp")):
                leftover.unlink(missing_ok=True)

    def recognise_stores(self, stores: tuple[str, ...], recorded_paths: tuple[str, ...]) -> None:
        """`recognise_store` for each store of a run trained on several as one, in the order they were given
        (the order of the frame pool)."""
        if len(stores) != len(recorded_paths):
            raise RunError(
                f"{self.path}: the run was trained on {len(recorded_paths)} store(s) ({', '.join(recorded_paths)}), "
                f"not {len(stores)}; give the same stores, or train another --run"
            )
        for index, (store, recorded_path) in enumerate(zip(stores, recorded_paths, strict=True)):
            self.recognise_store(Path(store), recorded_path, index)

    def recognise_store(self, store: Path, recorded_path: str | None = None, index: int = 0) -> None:
        """Accept `store` as the run's store number `index` (recorded at `recorded_path`, default: config.toml's):
        at that path, or moved, when its manifest shows the same genre and settings and every source the run
        trained on (said in one line); a different store is a RunError. Old runs recorded relative paths: they
        are taken from the working directory, as they always were."""
        recorded_path = self.read_config().stores[index] if recorded_path is None else recorded_path
        if Path(recorded_path).resolve() != Path(store).resolve():
            console.print(self._moved_store_line(Path(store), recorded_path, index), markup=False, soft_wrap=True)

    def _store_records(self) -> list[dict]:
        """store.json's identities, one per store (a run of one store holds a single object, as it always did)."""
        records = json.loads(self.store_record_path.read_text())
        return records if isinstance(records, list) else [records]

    def _moved_store_line(self, store: Path, recorded_path: str, index: int) -> str:
        try:
            recorded = self._store_records()[index]
        except (OSError, ValueError, IndexError) as error:
            raise RunError(
                f"{store}: the run {self.path} was trained on the store {recorded_path} and cannot recognise it "
                f"elsewhere ({self.store_record_path}: {getattr(error, 'strerror', None) or error}); give that store"
            ) from None
        found = store_identity(store)
        differences = [name for name in ("genre", "settings") if found[name] != recorded[name]]
        missing = set(recorded["fingerprints"]) - set(found["fingerprints"])
        if missing:
            differences.append(f"{len(missing)} of the run's {len(recorded['fingerprints'])} sources missing")
        if differences:
            raise RunError(
                f"{store}: not the store the run {self.path} was trained on ({recorded_path}): "
                f"{', '.join(differences)} differ; give that store, or train another --run"
            )
        return printable(f"{store}: the run's store, moved from {recorded_path} (same genre, settings and sources)")

    def _record_stores(self, stores: tuple[str, ...]) -> None:
        """store.json: each store's identity, with every source the run has trained on in any session
        (one object for a run of one store, a list of them for several)."""
        identities = [store_identity(Path(store)) for store in stores]
        try:
            earlier = [record["fingerprints"] for record in self._store_records()]
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: start afresh
            earlier = []
        for identity, fingerprints in zip(identities, earlier, strict=False):
            identity["fingerprints"] = sorted(set(identity["fingerprints"]) | set(fingerprints))
        record = identities[0] if len(identities) == 1 else identities
        write_atomic(self.store_record_path, json.dumps(record, indent=1), "the run's store record")

    def append_log(self, record: dict) -> None:
        with writing(self.log_path, "the training log"), open(self.log_path, "a") as file:
            file.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        """Complete records of log.jsonl (a line cut short by a killed process or a full disk is dropped)."""
        return self._read_log_lines()[0]

    def _read_log_lines(self) -> tuple[list[dict], int]:
        """(complete records, lines that are not one)."""
        if not self.log_path.exists():
            return [], 0
        records, damaged = [], 0
        for line in self.log_path.read_bytes().splitlines():
            try:
                records.append(json.loads(line))
            except (UnicodeDecodeError, json.JSONDecodeError):
                damaged += 1
        return records, damaged

    def truncate_log(self, images_seen: int) -> None:
        """Keep the records up to `images_seen`: those after it belong to training a resume repeats.
        Lines cut short (a kill or a full disk during an append) are dropped, and said so in one line."""
        records, damaged = self._read_log_lines()
        if damaged:
            console.print(f"{self.log_path}: {damaged} damaged line(s) dropped (a write cut short)", markup=False, soft_wrap=True)
        kept = [record for record in records if record["images_seen"] <= images_seen]
        write_atomic(self.log_path, "".join(json.dumps(record) + "\n" for record in kept), "the training log")

    def write_noise_bank(self, noise_bank: torch.Tensor) -> None:
        """The bank (N, z_dim) in Gaussian space (convert with `latent_from_gaussian`), for renderers
        that want to start from the faces the run's snapshots show."""
        with atomic_path(self.noise_bank_path, "the noise bank") as partial:
            save_file({"noise_bank": noise_bank.detach().cpu().contiguous()}, str(partial))

    def write_loss_plot(self) -> None:
        records = self.read_log()
        images = [record["images_seen"] for record in records]
        series = {
            "D loss": (images, [record["d_loss"] for record in records]),
            "G loss": (images, [record["g_loss"] for record in records]),
        }
        line_chart_png(self.loss_plot_path, series, f"{self.path.name}: losses", "images seen", "loss")


def write_config_toml(config: TrainConfig, path: Path) -> None:
    import tomli_w

    write_atomic(path, tomli_w.dumps(config_to_dict(config)), "the run's config")


def read_config_toml(path: Path) -> TrainConfig:
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RunError(f"{path}: cannot read the run's config ({error})") from None
    return config_from_dict(values, path)


def store_identity(store: Path) -> dict:
    """What recognises a frame store wherever it lies: its genre, settings and sources' fingerprints."""
    manifest = read_manifest(Path(store))
    settings = {
        name: list(value) if isinstance(value, tuple) else value for name, value in dataclasses.asdict(manifest.settings).items()
    }
    return {
        "path": str(Path(store).resolve()),
        "genre": manifest.genre,
        "settings": settings,
        "fingerprints": sorted({shard.fingerprint for shard in manifest.shards}),
    }
