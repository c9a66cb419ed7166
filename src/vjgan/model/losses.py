"""GAN losses on D's realness scores (N,), positive meaning "real".

"bce" is the original workflow's softmax cross-entropy (real = 0, fake = 1) in its equivalent
one-score form, with the usual non-saturating G loss (G is trained to have its frames called real).
"hinge" (Lim & Ye 2017; Miyato et al. 2018) stops pushing D once a score is beyond the margin,
which keeps D from overfitting a small dataset as fast.
"relativistic" (the pairing loss of R3GAN, Huang et al. 2024) scores each real frame against a fake one,
softplus(fake - real): D only has to rank pairs, not push absolute scores apart, which the paper shows
removes the mode dropping of the plain losses once D is kept smooth by R1 + R2 (`gradient_penalty`).
"""

import torch
import torch.nn.functional as F

LOSS_KINDS = ("bce", "hinge", "relativistic")
PAIRED_LOSSES = ("relativistic",)  # G's loss also reads D's scores of real frames


def d_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """D's loss: the real-batch term plus the fake-batch term, each a batch mean (as the original)."""
    if kind == "bce":
        # -log sigmoid(s) on real, -log(1 - sigmoid(s)) on fake, via softplus for stability
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    if kind == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    if kind == "relativistic":
        return F.softplus(fake_scores - real_scores).mean()  # pairs (real i, fake i) of equal batches
    raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")


def g_loss(kind: str, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None) -> torch.Tensor:
    """G's loss on D's scores of its frames (and, for the PAIRED_LOSSES, of as many real frames)."""
    if kind == "bce":
        return F.softplus(-fake_scores).mean()  # -log sigmoid(s): non-saturating
    if kind == "hinge":
        return -fake_scores.mean()
    if kind == "relativistic":
        return F.softplus(real_scores - fake_scores).mean()
    raise ValueError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |d score / d input|^2: R1 on real inputs, R2 on fake ones (Mescheder et al. 2018).

    Keeps D flat around the data so its gradient to G does not swing; `inputs` must require grad and
    `scores` must have been computed from them. The graph is kept, so the penalty itself is differentiated.
    """
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)  # (N, 3, H, W)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()
