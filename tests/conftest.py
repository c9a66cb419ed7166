"""Shared fixtures: tiny real media made at test time (never ../shared)."""

import os

import torch

# Tests run on small tensors; two threads per worker keep CI's 2 cores busy without oversubscribing.
torch.set_num_threads(int(os.environ.get("VJGAN_TEST_THREADS", "1")))
