"""GAN losses: bce is the original's softmax cross-entropy; hinge stops at its margin."""

import pytest
import torch
import torch.nn.functional as F

from vjgan.model.losses import d_loss, g_loss, gradient_penalty


def _two_class_logits(scores: torch.Tensor) -> torch.Tensor:
    """(N,) score -> (N, 2) logits whose difference (real - fake) is that score."""
    return torch.stack([scores / 2, -scores / 2], dim=1)


def test_bce_is_the_originals_softmax_cross_entropy_with_real_0_fake_1():
    real, fake = torch.randn(7) * 3, torch.randn(7) * 3
    real_label, fake_label = torch.zeros(7, dtype=torch.long), torch.ones(7, dtype=torch.long)
    expected_d = F.cross_entropy(_two_class_logits(real), real_label) + F.cross_entropy(_two_class_logits(fake), fake_label)
    expected_g = F.cross_entropy(_two_class_logits(fake), real_label)  # G wants its frames called real
    torch.testing.assert_close(d_loss("bce", real, fake), expected_d)
    torch.testing.assert_close(g_loss("bce", fake), expected_g)


def test_bce_generator_loss_does_not_saturate_when_d_wins():
    fake = torch.tensor([-20.0], requires_grad=True)  # D is sure this frame is fake
    g_loss("bce", fake).backward()
    assert fake.grad.item() < -0.99  # still a full-strength push towards "real"


def test_hinge_ignores_scores_beyond_the_margin():
    assert d_loss("hinge", torch.tensor([1.5, 3.0]), torch.tensor([-1.0, -4.0])) == 0
    assert d_loss("hinge", torch.tensor([0.5]), torch.tensor([0.0])) == pytest.approx(0.5 + 1.0)
    fake = torch.tensor([2.0, -3.0])
    assert g_loss("hinge", fake) == pytest.approx(0.5)
    assert g_loss("hinge", fake + 1) < g_loss("hinge", fake)


def test_bce_and_hinge_both_fall_as_d_separates_real_from_fake():
    for kind in ("bce", "hinge"):
        margins = [0.0, 0.5, 2.0]
        losses = [d_loss(kind, torch.full((4,), m), torch.full((4,), -m)).item() for m in margins]
        assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1], kind


def test_unknown_loss_kind_is_refused():
    with pytest.raises(ValueError, match="wasserstein"):
        d_loss("wasserstein", torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="wasserstein"):
        g_loss("wasserstein", torch.zeros(2))


def test_relativistic_loss_ranks_pairs_so_shifting_every_score_changes_nothing():
    real, fake = torch.randn(6), torch.randn(6)
    for shift in (-5.0, 0.0, 7.0):
        torch.testing.assert_close(d_loss("relativistic", real + shift, fake + shift), d_loss("relativistic", real, fake))
        torch.testing.assert_close(g_loss("relativistic", fake + shift, real + shift), g_loss("relativistic", fake, real))
    assert d_loss("relativistic", torch.tensor([3.0]), torch.tensor([-3.0])) < 0.01  # a pair ranked right
    assert g_loss("relativistic", torch.tensor([-3.0]), torch.tensor([3.0])) > 6  # G's frame ranked below its pair


def test_gradient_penalty_is_the_squared_input_gradient_and_can_be_differentiated():
    weight = torch.tensor([[1.0, 2.0], [0.0, -3.0]], requires_grad=True)
    inputs = torch.randn(5, 1, 2, 2, requires_grad=True)
    scores = (inputs.flatten(1) * weight.flatten()).sum(1) * 0.5  # linear: d score / d input = weight / 2
    penalty = gradient_penalty(scores, inputs)
    assert penalty.item() == pytest.approx((1 + 4 + 9) / 4)
    penalty.backward()  # D's weights get the penalty's gradient: 2 * (weight / 2) / 2
    torch.testing.assert_close(weight.grad, weight.detach() / 2)
