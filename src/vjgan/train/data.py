"""The frames D learns from: the whole store on the training device, or batches streamed from disk.

In memory (`RealFrames`), every batch is a gather from one uint8 tensor on the device: the fastest way,
while the store fits. A store larger than the data budget (10 hours at 96 px is 30 GB; at 256 px over
200 GB) is streamed instead (`StreamedFrames`): a background thread draws each coming batch's frame
indices and flips with the very random stream the in-memory path draws them with, a few threads read
those frames from the shards by positioned reads into (pinned) host memory, and each step starts by
copying its batch to the device. The draws are the same in both modes, so on the CPU a run is bit for
bit the same streamed or in memory, and may switch between them on resume. Under torchrun, each rank
streams only the frames of the batch shards it holds.

The budget (`TrainConfig.data_budget_gib`, else half the memory free now, shared among this machine's
ranks, and on CUDA at most half the device's free memory) decides with `data = "auto"`; "memory" and
"stream" force either mode.
"""

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vjgan.console import console
from vjgan.errors import StoreError
from vjgan.footage.store import FrameStore, open_stores
from vjgan.train.config import TrainConfig
from vjgan.train.distributed import World

GIB = 1024**3
BUDGET_SHARE_OF_FREE = 0.5  # the rest is the model's, the activations' and everyone else's
PREFETCH_STEPS = 4  # batches read ahead of the step
READ_THREADS = 4  # positioned reads release the GIL: a few run at once (a disk serves several requests)


@dataclass(frozen=True)
class RealFrames:
    """The whole store on the training device, and how its frames group into sources."""

    frames: torch.Tensor  # (N, H, W, 3) uint8
    source_spans: torch.Tensor | None = None  # (S, 2) int64 [first frame, frames] per source to balance over; None: uniform

    @property
    def draw_device(self) -> torch.device:
        """Where the batch stream draws: beside the frames."""
        return self.frames.device

    def stage(self, streams: list[dict[str, torch.Generator]]) -> None:
        """Nothing to fetch before a step: every frame is on the device."""

    def sample(self, position: int, count: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
        """A random batch (count, 3, H, W) float in [-1, 1], channels_last, drawn from `generator`."""
        index, flips = draw_batch(len(self.frames), count, flip, generator, self.source_spans)
        device = self.frames.device
        return to_images(self.frames[index.to(device)], None if flips is None else flips.to(device))

    def close(self) -> None:
        """Nothing runs beside the steps."""


class StreamedFrames:
    """Batches read from the stores on disk a few steps ahead; the same draws as `RealFrames` would make.

    `stage(streams)` (before each step) takes the next batch of every shard this rank holds, copies it
    into a fixed device buffer (so a CUDA graph replays over it) and moves each shard's batch stream to
    where its draws left it, as `RealFrames.sample` would have: checkpoints save, and resume continues,
    the same stream. The reader starts at the first `stage`, from the streams' states then.
    A read that fails (a shard deleted or damaged mid-run) stops training with the file named.
    """

    draw_device = torch.device("cpu")

    def __init__(self, pool: "StorePool", rank_batch: int, flip: bool, device: torch.device, source_spans=None):
        self.pool, self.rank_batch, self.flip, self.device = pool, rank_batch, flip, device
        self.count = 0  # frames per batch shard: the rank's batch over the shards it holds (known at the first stage)
        self.source_spans = source_spans  # (S, 2) int64 on the CPU, or None
        self.pinned = device.type == "cuda"
        self.batches: list[torch.Tensor] = []  # per held shard, (count, H, W, 3) uint8 on the device
        self.flips: list[torch.Tensor] = []  # per held shard, (count,) bool on the device (unused without flips)
        self.ready: queue.Queue = queue.Queue(maxsize=PREFETCH_STEPS)
        self.stopping = threading.Event()
        self.readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="vjgan-read")
        self.drawer: threading.Thread | None = None

    def stage(self, streams: list[dict[str, torch.Generator]]) -> None:
        if self.drawer is None:
            self._start([shard["batch"] for shard in streams])
        step = self.ready.get()
        if isinstance(step, BaseException):
            raise step
        for position, (read, flips, state_after) in enumerate(step):
            self.batches[position].copy_(read.result(), non_blocking=self.pinned)  # a failed read raises here
            if flips is not None:
                self.flips[position].copy_(flips, non_blocking=self.pinned)
            streams[position]["batch"].set_state(state_after)

    def sample(self, position: int, count: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
        """The batch `stage` fetched for shard `position` (the draws were made from a copy of `generator`)."""
        return to_images(self.batches[position], self.flips[position] if flip else None)

    def _start(self, generators: list[torch.Generator]) -> None:
        self.count = self.rank_batch // len(generators)
        frame_shape = (self.count, *self.pool.size_px, 3)
        self.batches = [torch.empty(frame_shape, dtype=torch.uint8, device=self.device) for _ in generators]
        self.flips = [torch.zeros(self.count, dtype=torch.bool, device=self.device) for _ in generators]
        copies = [torch.Generator().set_state(generator.get_state()) for generator in generators]
        self.drawer = threading.Thread(target=self._draw, args=(copies,), name="vjgan-draw", daemon=True)
        self.drawer.start()

    def _draw(self, generators: list[torch.Generator]) -> None:
        """The drawing thread: each step's draws in order, their reads handed to the readers, queued as futures
        (at most PREFETCH_STEPS + 1 steps' frames are held)."""
        try:
            while not self.stopping.is_set():
                step = []
                for generator in generators:
                    index, flips = draw_batch(len(self.pool), self.count, self.flip, generator, self.source_spans)
                    step.append((self.readers.submit(self._read, index.numpy()), flips, generator.get_state()))
                self._hand_over(step)
        except BaseException as error:  # noqa: BLE001 - handed to the training thread, which raises it
            self._hand_over(error)

    def _hand_over(self, item) -> None:
        """Queue `item` for `stage`, waiting while PREFETCH_STEPS are queued, unless training has stopped."""
        while not self.stopping.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _read(self, index: np.ndarray) -> torch.Tensor:
        frames = torch.empty((len(index), *self.pool.size_px, 3), dtype=torch.uint8, pin_memory=self.pinned)
        self.pool.read_frames(index, frames.numpy())
        return frames

    def close(self) -> None:
        """Stop the reader and wait for it (a read in flight finishes first)."""
        self.stopping.set()
        if self.drawer is not None:
            self.drawer.join()
        self.readers.shutdown(wait=True, cancel_futures=True)
        self.pool.close()


class StorePool:
    """Several stores read as one (`vjgan train DATA/a DATA/b`): the frames of the first, then the second, ..."""

    def __init__(self, stores: tuple[FrameStore, ...]):
        self.stores = stores
        self.size_px = stores[0].size_px
        self.starts = np.cumsum([0] + [len(store) for store in stores])  # (stores + 1,) first frame of each
        self.frame_bytes = int(np.prod(self.size_px)) * 3

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def bytes(self) -> int:
        return len(self) * self.frame_bytes

    def source_spans(self) -> list[tuple[int, int]]:
        """[first frame, frames] of every source with frames, over the pool's index space."""
        return [
            (int(start) + shard.start, shard.frames)
            for store, start in zip(self.stores, self.starts)
            for shard in store.shards
            if shard.frames
        ]

    def read_frames(self, indices: np.ndarray, out: np.ndarray) -> None:
        """Frames at pool `indices` into `out`, each store reading its own (see `FrameStore.read_frames`)."""
        if len(self.stores) == 1:
            self.stores[0].read_frames(indices, out)
            return
        store_of = np.searchsorted(self.starts, indices, side="right") - 1
        for store in np.unique(store_of):
            chosen = np.flatnonzero(store_of == store)
            part = np.empty((len(chosen), *self.size_px, 3), np.uint8)
            self.stores[store].read_frames(indices[chosen] - self.starts[store], part)
            out[chosen] = part

    def copy_into(self, frames: torch.Tensor) -> None:
        """Every frame into `frames` ((N, H, W, 3) uint8 on any device), a shard at a time: the host holds one
        shard beside the destination, never a second copy of the store."""
        for store, start in zip(self.stores, self.starts):
            for index, shard in enumerate(store.shards):
                first = int(start) + shard.start
                frames[first : first + shard.frames].copy_(torch.from_numpy(np.array(store.shard_frames(index))))

    def close(self) -> None:
        for store in self.stores:
            store.close()


def load_training_data(config: TrainConfig, world: World) -> RealFrames | StreamedFrames:
    """The frames of `config.stores` for this rank: on the device, or streamed when they exceed the budget
    (or as `config.data` forces). Refuses a store of another size than the model's."""
    if not config.store:
        raise StoreError("no frame store given; pass DATA_DIR/<genre> (made by vjgan ingest)")
    stores = open_stores(config.stores)  # refuses an empty store, and stores of different sizes
    if tuple(stores[0].size_px) != config.model.size_px:
        store_h, store_w = stores[0].size_px
        model_h, model_w = config.model.size_px
        raise StoreError(
            f"{stores[0].path}: frames are {store_w}x{store_h} px but the model makes {model_w}x{model_h} px; "
            f"train with --size {store_w}x{store_h} or ingest again at the model's size"
        )
    pool = StorePool(stores)
    streamed = streams_from_disk(config, world, pool)
    spans = None  # sources to balance over, where the draws are made: on the host when streamed
    if config.balance == "sources":
        spans = torch.tensor(pool.source_spans(), dtype=torch.int64, device="cpu" if streamed else world.device)
    if streamed:
        return StreamedFrames(pool, config.batch_size // world.size, config.flip, world.device, spans)
    frames = allocate_frames(pool, world.device)
    pool.copy_into(frames)
    return RealFrames(frames, spans)


def streams_from_disk(config: TrainConfig, world: World, pool: StorePool) -> bool:
    """Whether this run streams its frames: as `config.data` says, or ("auto") when they exceed the budget."""
    if config.data != "auto":
        return config.data == "stream"
    if config.data_budget_gib is not None:
        budget, why = int(config.data_budget_gib * GIB), "--data-budget"
    else:
        budget, why = free_memory_budget(world), f"{BUDGET_SHARE_OF_FREE:.0%} of the free memory"
    if budget is None or pool.bytes <= budget:
        return False
    if world.is_main:
        console.print(
            f"{pool.stores[0].path}: {pool.bytes / GIB:.1f} GiB of frames exceed the data budget of {budget / GIB:.1f} GiB "
            f"({why}): streaming batches from disk (--data memory to load them anyway)",
            markup=False,
            soft_wrap=True,
        )
    return True


def free_memory_budget(world: World) -> int | None:
    """Bytes of frames this rank may hold: half the memory free now (host, shared among the machine's ranks;
    on CUDA also at most half the device's free memory). None where the OS does not say."""
    free = free_host_memory_bytes()
    if free is not None:
        free //= int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world.device.type == "cuda":
        device_free, _ = torch.cuda.mem_get_info(world.device)
        free = device_free if free is None else min(free, device_free)
    return None if free is None else int(free * BUDGET_SHARE_OF_FREE)


def free_host_memory_bytes() -> int | None:
    """Memory this process could still take: the OS's available memory, less where a cgroup (a container's
    limit) allows less. None where neither /proc nor sysconf says."""
    candidates = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
        candidates.append(int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemAvailable:"))) * 1024)
    except (OSError, StopIteration, ValueError):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    cgroup = cgroup_free_bytes()
    if cgroup is not None:
        candidates.append(cgroup)
    return min(candidates) if candidates else None


def cgroup_free_bytes() -> int | None:
    """limit - usage of this process's memory cgroup (v2, else v1); None when it has no limit."""
    try:
        entries = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for entry in entries:
        _, controllers, path = entry.split(":", 2)
        if controllers == "":  # v2
            folder = Path("/sys/fs/cgroup") / path.lstrip("/")
            limit_file, usage_file = folder / "memory.max", folder / "memory.current"
        elif "memory" in controllers.split(","):  # v1
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            limit_file, usage_file = folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes"
        else:
            continue
        try:
            limit, usage = limit_file.read_text().strip(), int(usage_file.read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            return max(int(limit) - usage, 0)
    return None


def allocate_frames(pool: StorePool, device: torch.device) -> torch.Tensor:
    """The (N, H, W, 3) uint8 tensor the whole pool goes into, or one line saying it does not fit."""
    try:
        return torch.empty((len(pool), *pool.size_px, 3), dtype=torch.uint8, device=device)
    except (RuntimeError, MemoryError) as error:  # torch's out-of-memory errors are RuntimeErrors
        if "memory" not in str(error).lower():
            raise
        raise StoreError(
            f"{pool.stores[0].path}: {pool.bytes / GIB:.1f} GiB of frames do not fit in {device.type} memory; "
            "train with --data stream (or --data auto)"
        ) from None


def draw_batch(
    frame_count: int, count: int, flip: bool, generator: torch.Generator, source_spans=None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch's random choices, in the order every mode draws them: (count,) frame indices, then, with
    `flip`, (count,) bool flips (mirror a random half, the original's augmentation), on the generator's device."""
    index = draw_frame_indices(frame_count, count, generator, source_spans)
    flips = torch.rand(count, generator=generator, device=generator.device) < 0.5 if flip else None
    return index, flips


def draw_frame_indices(frame_count: int, count: int, generator: torch.Generator, source_spans=None) -> torch.Tensor:
    """(count,) int64 store indices, with replacement, on the generator's device.

    Without `source_spans`, uniform over the store's frames. With them ((S, 2) int64 [first frame,
    frames] per source, on the generator's device), a source uniformly, then one of its frames
    uniformly: a one-minute clip and a ten-second one each give half the batch. Two draws and a
    gather on the device (no host sync, no per-frame weight table, no limit on the store's size).
    """
    device = generator.device
    if source_spans is None:
        return torch.randint(frame_count, (count,), generator=generator, device=device)
    source = torch.randint(len(source_spans), (count,), generator=generator, device=device)  # (count,)
    first, length = source_spans[source].unbind(1)  # (count,) each
    offset = (torch.rand(count, generator=generator, device=device, dtype=torch.float64) * length).long()  # (count,)
    return first + torch.minimum(offset, length - 1)  # the minimum guards u * length rounding up to length


def to_images(frames: torch.Tensor, flips: torch.Tensor | None) -> torch.Tensor:
    """(count, H, W, 3) uint8 frames -> (count, 3, H, W) float in [-1, 1], channels_last, `flips` mirrored."""
    images = frames.permute(0, 3, 1, 2).float() / 127.5 - 1  # NHWC memory is channels_last already
    if flips is not None:
        images = torch.where(flips[:, None, None, None], images.flip(3), images)
    return images.contiguous(memory_format=torch.channels_last)
