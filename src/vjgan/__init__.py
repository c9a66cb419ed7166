"""vjgan: turn a VJ's own footage into GAN-dreamed VJ clips.

The data's path, one subpackage per stage:
footage (videos -> frame stores) -> model/train (frame store -> run directory)
-> render (run directory -> clips). `vjgan.cli` is a thin layer over these.
"""

__version__ = "0.1.0"
