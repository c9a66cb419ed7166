"""The generator / discriminator family: the original's exact layers, every size, init, latents."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vjgan.errors import VjganError
from vjgan.model.networks import (
    Discriminator,
    Generator,
    MinibatchStddev,
    ModelConfig,
    latent_from_gaussian,
    sample_latents,
    to_uint8,
)

TINY = dict(width=4, z_dim=8)


def _layers(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def test_seed96_has_the_original_layers():
    config = ModelConfig()  # the defaults are the original workflow's network
    generator, discriminator = Generator(config), Discriminator(config)

    assert config.size_px == (96, 96) and config.z_dim == 100 and config.latent == "uniform"
    assert (generator.project.in_features, generator.project.out_features) == (100, 6 * 6 * 512)
    deconvs = _layers(generator, nn.ConvTranspose2d)
    assert [(d.in_channels, d.out_channels) for d in deconvs] == [(512, 256), (256, 128), (128, 64), (64, 3)]
    assert all(d.kernel_size == (4, 4) and d.stride == (2, 2) for d in deconvs)
    assert len(_layers(generator, nn.BatchNorm2d)) == 4  # after the Linear and between the deconvs
    assert len(_layers(generator, nn.ReLU)) == 4 and not _layers(generator, nn.Tanh)
    assert [d.bias is not None for d in deconvs] == [False, False, False, True]  # BatchNorm cancels a bias

    convs = _layers(discriminator, nn.Conv2d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 512)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert len(_layers(discriminator, nn.BatchNorm2d)) == 3  # all but the first convolution
    assert len(_layers(discriminator, nn.ELU)) == 4
    assert [c.bias is not None for c in convs] == [True, False, False, False]
    head = discriminator.head
    assert (head.in_features, head.out_features) == (6 * 6 * 512, 2)


@pytest.mark.parametrize("arch", ["seed96", "modern"])
@pytest.mark.parametrize("size_px", [(32, 32), (48, 48), (64, 64), (96, 96), (128, 128), (256, 256), (512, 512), (64, 112)])
def test_every_supported_size_generates_and_scores_that_size(arch, size_px):
    config = ModelConfig(size_px=size_px, arch=arch, **TINY)
    images = Generator(config)(torch.randn(2, config.z_dim))
    assert images.shape == (2, 3, *size_px)
    assert Discriminator(config)(images).shape == (2,)


def test_large_sizes_use_more_blocks_not_larger_grids():
    assert ModelConfig(size_px=(96, 96)).base_grid == (6, 6)
    assert ModelConfig(size_px=(128, 128)).n_blocks == 5 and ModelConfig(size_px=(128, 128)).base_grid == (4, 4)
    assert ModelConfig(size_px=(256, 256)).base_grid == (4, 4)
    assert max(ModelConfig(size_px=(256, 256)).channels) == 8 * 64  # capped, not 32 * width
    assert ModelConfig(size_px=(512, 512)).n_blocks == 7 and ModelConfig(size_px=(512, 512)).base_grid == (4, 4)
    assert ModelConfig(size_px=(288, 512)).base_grid == (9, 16)  # 16:9 at 512 wide: 5 blocks from 9x16


@pytest.mark.parametrize(
    "changes",
    [dict(size_px=(100, 100)), dict(size_px=(16, 16)), dict(size_px=(528, 528)), dict(arch="stylegan"), dict(latent="cauchy")],
)
def test_unsupported_settings_are_refused_with_a_reason(changes):
    with pytest.raises(VjganError, match="model"):
        ModelConfig(**changes)


def test_weights_start_from_the_dcgan_init():
    torch.manual_seed(0)
    generator = Generator(ModelConfig(size_px=(32, 32), width=16))
    deconv_weights = torch.cat([d.weight.flatten() for d in _layers(generator, nn.ConvTranspose2d)])
    batchnorm_scales = torch.cat([b.weight for b in _layers(generator, nn.BatchNorm2d)])
    assert deconv_weights.mean().abs() < 0.002 and abs(deconv_weights.std() - 0.02) < 0.002
    assert abs(batchnorm_scales.mean() - 1) < 0.01 and abs(batchnorm_scales.std() - 0.02) < 0.01
    assert (generator.project.bias == 0).all() and (generator.blocks[-1].bias == 0).all()


def test_seed96_score_turns_softmax_cross_entropy_into_binary_cross_entropy():
    torch.manual_seed(0)
    discriminator = Discriminator(ModelConfig(size_px=(32, 32), **TINY))
    images = torch.randn(6, 3, 32, 32)
    logits = discriminator.head(discriminator.features(images).flatten(1))  # (6, 2)
    score = discriminator(images)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])  # real = 0, fake = 1, as the original
    softmax_ce = F.cross_entropy(logits, labels)
    bce = F.binary_cross_entropy_with_logits(score, (labels == 0).float())
    torch.testing.assert_close(softmax_ce, bce)


@pytest.mark.parametrize("arch,spectral_norm", [("seed96", False), ("modern", True), ("modern", False)])
def test_every_parameter_gets_a_gradient(arch, spectral_norm):
    config = ModelConfig(size_px=(32, 32), arch=arch, spectral_norm=spectral_norm, **TINY)
    generator, discriminator = Generator(config), Discriminator(config)
    discriminator(generator(torch.randn(4, config.z_dim))).mean().backward()
    for name, parameter in [*generator.named_parameters(), *discriminator.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_spectral_norm_replaces_batchnorm_in_the_discriminator():
    discriminator = Discriminator(ModelConfig(size_px=(32, 32), arch="modern", spectral_norm=True, **TINY))
    assert not _layers(discriminator, nn.BatchNorm2d)
    normalised = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert normalised and all(hasattr(m, "parametrizations") for m in normalised)
    # the normalised weight has largest singular value ~1 after power iterations in training mode
    for _ in range(30):
        discriminator(torch.randn(2, 3, 32, 32))
    head_weight = discriminator.head.weight
    assert abs(torch.linalg.matrix_norm(head_weight, ord=2) - 1) < 0.05


@pytest.mark.parametrize("arch", ["seed96", "modern"])
def test_channels_last_gives_the_same_images_and_scores(arch):
    config = ModelConfig(size_px=(32, 32), arch=arch, **TINY)
    torch.manual_seed(0)
    generator, discriminator = Generator(config).eval(), Discriminator(config).eval()
    z = torch.randn(3, config.z_dim)
    images = generator(z)
    scores = discriminator(images)
    generator.to(memory_format=torch.channels_last)
    discriminator.to(memory_format=torch.channels_last)
    images_cl = generator(z)
    torch.testing.assert_close(images_cl, images, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(discriminator(images.contiguous(memory_format=torch.channels_last)), scores, rtol=1e-4, atol=1e-5)


def test_modern_generator_stays_in_display_range_and_seed96_is_unbounded_but_displayable():
    z = torch.randn(4, 8) * 50
    modern = Generator(ModelConfig(size_px=(32, 32), arch="modern", **TINY))
    assert modern(z).abs().max() <= 1
    seed96 = Generator(ModelConfig(size_px=(32, 32), **TINY))
    with torch.no_grad():
        seed96.blocks[-1].weight.mul_(1000)  # push the raw output far outside [-1, 1]
    raw = seed96(z)
    assert raw.abs().max() > 1
    frames = to_uint8(raw)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == torch.uint8
    assert {0, 255} <= set(frames.unique().tolist())


def test_minibatch_stddev_reports_a_collapsed_batch_as_zero_spread():
    features = torch.randn(1, 5, 3, 3).expand(4, 5, 3, 3)
    assert MinibatchStddev()(features)[:, -1].abs().max() == 0
    assert MinibatchStddev()(torch.randn(4, 5, 3, 3))[:, -1].min() > 0.3


def test_uniform_latents_are_uniform_in_the_unit_interval():
    z = latent_from_gaussian(torch.randn(200_000, generator=torch.Generator().manual_seed(1)), "uniform")
    assert z.min() >= -1 and z.max() <= 1
    counts = torch.histc(z, bins=10, min=-1, max=1)
    assert (counts / len(z) - 0.1).abs().max() < 0.005  # flat: each tenth holds 10% of the values
    g = torch.randn(5, 3)
    assert torch.equal(latent_from_gaussian(g, "normal"), g)


def test_sample_latents_are_reproducible_from_the_generator_seed():
    first = sample_latents(4, 100, "uniform", torch.Generator().manual_seed(7))
    again = sample_latents(4, 100, "uniform", torch.Generator().manual_seed(7))
    other = sample_latents(4, 100, "uniform", torch.Generator().manual_seed(8))
    assert first.shape == (4, 100) and torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("size_px", [(32, 32), (64, 64), (128, 128), (256, 256), (64, 112)])
def test_skip_excitation_gates_the_map_8x_finer_at_every_size(size_px):
    config = ModelConfig(size_px=size_px, arch="modern", skip_excitation=True, **TINY)
    generator = Generator(config)
    assert len(generator.excite) == config.n_blocks - 3 and generator(torch.randn(2, 8)).shape == (2, 3, *size_px)
    with torch.no_grad():  # a gate shut on every channel leaves the fine map all zero: the frame no longer depends on z
        generator.excite[0].gate[1].weight.fill_(1.0)  # the pooled coarse map is >= 0 (after a ReLU): a positive sum
        generator.excite[0].gate[3].weight.fill_(-1e3)  # sigmoid(-large) = 0 on every channel
    images = generator.eval()(torch.randn(3, 8))
    torch.testing.assert_close(images[0], images[1])


def test_skip_excitation_is_modern_only_and_off_by_default():
    assert ModelConfig().skip_excitation is False and not Generator(ModelConfig(**TINY)).excite
    with pytest.raises(VjganError, match="skip_excitation: only for arch 'modern'"):
        ModelConfig(arch="seed96", skip_excitation=True)
