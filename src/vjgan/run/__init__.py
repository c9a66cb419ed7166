"""The run directory API: `run.directory.RunDir` knows the layout of `RUNS/<name>/` and offers typed reads
(config, counters, EMA generator, snapshots, log); `run.checkpoint` owns checkpoints/, `run.snapshots`
owns snapshots/. train/ writes through it; render/, evaluate, demo and the live mode only read."""
