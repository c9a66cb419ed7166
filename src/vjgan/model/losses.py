"""GAN losses on D's realness scores (N,), positive meaning "real".

"bce" is the original workflow's softmax cross-entropy (real = 0, fake = 1) in its equivalent
one-score form, with the usual non-saturating G loss (G is trained to have its frames called real).
"hinge" (Lim & Ye 2017; Miyato et al. 2018) stops pushing D once a score is beyond the margin,
which keeps D from overfitting a small dataset as fast.
"""

import torch
import torch.nn.functional as F

LOSS_KINDS = ("bce", "hinge")


def d_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """D's loss: the real-batch term plus the fake-batch term, each a batch mean (as the original)."""
    if kind == "bce":
        # -log sigmoid(s) on real, -log(1 - sigmoid(s)) on fake, via softplus for stability
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    if kind == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")


def g_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """G's loss on D's scores of its frames."""
    if kind == "bce":
        return F.softplus(-fake_scores).mean()  # -log sigmoid(s): non-saturating
    if kind == "hinge":
        return -fake_scores.mean()
    raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")
