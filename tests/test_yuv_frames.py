"""yuv420p made where the frames are (`layout.to_yuv420p`, the GPU render's path) and handed straight to the
H.264 writer: the same picture as swscale's conversion of the RGB frames, written and decoded back for real."""

from functools import partial
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from render_media import decode_clip

from vjgan.render.clips import clip_latents, latent_composition, open_renderer
from vjgan.render.latent import loop_path
from vjgan.render.layout import from_uint8_hwc, to_uint8_hwc, to_yuv420p
from vjgan.render.pipeline import ClipJob, RenderConfig, write_clips
from vjgan.render.video import WriterOptions, open_writer

WIDTH, HEIGHT = 64, 38  # H / 2 odd: a chroma plane does not fill whole rows of W, so PyAV's flat layout is tested


def smooth_gradient(n_frames: int, width: int = WIDTH, height: int = HEIGHT) -> torch.Tensor:
    """(T, 3, H, W) in [-1, 1], channels-last in memory as `compose_batch` makes frames: colour ramps, moving."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    frames = [torch.stack([xs, ys * (1 - t / n_frames), -(xs + ys) / 2]) for t in range(n_frames)]
    return torch.stack(frames).to(memory_format=torch.channels_last)


def noise(n_frames: int, width: int = WIDTH, height: int = HEIGHT) -> torch.Tensor:
    """(T, 3, H, W) uniform noise in [-1, 1], plain (channels-first) memory: every 2x2 block differs."""
    return torch.rand(n_frames, 3, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1


def swscale(rgb: np.ndarray, pix_fmt: str) -> np.ndarray:
    """What the writer's `Scaler` does to an (H, W, 3) frame at the clip's size, as PyAV's ndarray of `pix_fmt`."""
    height, width = rgb.shape[:2]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    converted = frame.reformat(
        width, height, pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG", interpolation="BICUBIC", threads=1
    )
    return converted.to_ndarray()


def split_planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H * 3 // 2, W) yuv420p, PyAV's layout -> Y (H, W), U and V (H / 2, W / 2), as int."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    flat = frame.astype(int).reshape(-1)
    luma_px, chroma_px = height * width, height * width // 4
    y, u, v = np.split(flat, [luma_px, luma_px + chroma_px])
    return y.reshape(height, width), u.reshape(height // 2, width // 2), v.reshape(height // 2, width // 2)


def psnr_db(ours: np.ndarray, reference: np.ndarray) -> float:
    error = np.mean((ours.astype(float) - reference.astype(float)) ** 2)
    return 10 * np.log10(255**2 / max(error, 1e-10))


def test_planes_are_pyav_yuv420p_bt709_limited_range():
    """Black, white and the primaries land on BT.709's limited-range levels, Y then U then V."""
    colours = torch.tensor([[-1, -1, -1], [1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float32)
    frames = colours[:, :, None, None].expand(-1, -1, 4, 6)  # (5, 3, 4, 6): one flat colour per frame
    planes = to_yuv420p(frames)
    assert planes.shape == (5, 6, 6) and planes.dtype == np.uint8
    levels = [tuple(int(plane[0, 0]) for plane in split_planes(frame)) for frame in planes]
    # (Y, Cb, Cr): Y = 16 + 219 (0.2126 R + 0.7152 G + 0.0722 B); black 16, white 235, chroma 16..240 around 128
    assert levels == [(16, 128, 128), (235, 128, 128), (63, 102, 240), (173, 42, 26), (32, 240, 118)]
    frame = av.VideoFrame.from_ndarray(planes[2], format="yuv420p")  # PyAV reads the layout back as given
    assert (frame.width, frame.height) == (6, 4) and np.array_equal(frame.to_ndarray(), planes[2])


@pytest.mark.parametrize("picture, chroma_mean_bound", [(smooth_gradient, 0.5), (noise, 6.0)], ids=["gradient", "noise"])
def test_planes_match_swscales_conversion_of_the_rgb_frames(picture, chroma_mean_bound):
    """Y within a level of swscale's everywhere. Chroma is each 2x2 block's mean: within a level of swscale's
    full-resolution chroma averaged so; against swscale's own yuv420p, which filters the two rows with the
    scaler's bicubic kernel (reaching the rows around), it differs by a mean of 0.11 (U) / 0.14 (V) levels
    on the gradient and 4.6 / 5.0 on noise. A wrong matrix (BT.601) or range (full) moves Y by 16-28 levels,
    and chroma on the gradient by 4-5.5 on average; U and V swapped differ by 51 (gradient) and 20 (noise)."""
    frames = picture(3)
    rgb = to_uint8_hwc(frames)  # (T, H, W, 3), what the RGB path hands the writer
    for planes, rgb_frame in zip(to_yuv420p(frames), rgb):
        y, u, v = split_planes(planes)
        sws_y, sws_u, sws_v = split_planes(swscale(rgb_frame, "yuv420p"))
        assert np.abs(y - sws_y).max() <= 1
        assert np.abs(u - sws_u).mean() < chroma_mean_bound and np.abs(v - sws_v).mean() < chroma_mean_bound
        full_y, full_u, full_v = swscale(rgb_frame, "yuv444p").astype(float)  # (3, H, W), chroma at every pixel
        for ours, full in [(u, full_u), (v, full_v)]:
            block_means = full.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))
            assert np.abs(ours - block_means).max() <= 1


def write_chunks(path: Path, chunks: list[np.ndarray], frame_size_wh=(WIDTH, HEIGHT), **options) -> Path:
    with open_writer(path, WriterOptions(30, frame_size_wh, **options)) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return path


def test_clip_written_from_planes_decodes_like_the_same_frames_written_as_rgb(tmp_path):
    """Two H.264 encodes of inputs a level apart differ by x264's own noise: 46 dB measured on the gradient.
    On noise, which crf 18 codes loosely either way (~12 dB from the source), neither path is the worse."""
    frames = from_uint8_hwc(np.concatenate([to_uint8_hwc(smooth_gradient(5)), to_uint8_hwc(noise(4))]))  # (9, 3, H, W)
    source = to_uint8_hwc(frames)
    chunk_frames = 4  # the last chunk is short
    planes = write_chunks(tmp_path / "planes.mp4", [to_yuv420p(part) for part in frames.split(chunk_frames)])
    rgb = write_chunks(tmp_path / "rgb.mp4", [to_uint8_hwc(part) for part in frames.split(chunk_frames)])
    from_planes, from_rgb = decode_clip(planes), decode_clip(rgb)
    assert len(from_planes.frames) == 9 and from_planes.frames.shape[1:] == (HEIGHT, WIDTH, 3)
    assert from_planes.seconds == pytest.approx(9 / 30, abs=1e-6) and from_planes.fps == 30
    assert (from_planes.codec, from_planes.pix_fmt) == ("h264", "yuv420p")
    assert psnr_db(from_planes.frames[:5], from_rgb.frames[:5]) > 43
    assert psnr_db(from_planes.frames, source) > psnr_db(from_rgb.frames, source) - 0.5
    with av.open(str(planes)) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc, context.color_range) == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "name, options, takes",
    [
        ("clip.mp4", {}, True),
        ("small-canvas.mp4", {"source_size_wh": (32, 20)}, False),
        ("clip.mov", {"codec": "prores"}, False),
        ("clip.gif", {}, False),
        ("frames", {"fmt": "png"}, False),
        ("clip-hap.mov", {"codec": "hap"}, False),
    ],
    ids=["h264", "h264-small-canvas", "prores", "gif", "png", "hap"],
)
def test_only_h264_at_the_clips_size_takes_planes(tmp_path, name, options, takes):
    writer = open_writer(tmp_path / name, WriterOptions(30, (WIDTH, HEIGHT), **options))
    try:
        assert writer.takes_yuv420p is takes
        if not takes:
            with pytest.raises(ValueError, match="expected"):
                writer.write(to_yuv420p(smooth_gradient(1)))
    finally:
        writer.discard()


def render_loop_clip(run_dir: Path, path: Path, config: RenderConfig, n_frames: int, yuv_on_device: bool):
    """`render loop`'s pass with the choice of where frames become yuv420p made explicit:
    (the first frame `write_clips` returns, the composed frames as RGB uint8, recorded by the effects hook)."""
    renderer, bank_size = open_renderer(run_dir, None, config)
    composition = latent_composition(config, renderer, bank_size)
    latents = clip_latents(config.seed, composition.n_samples, partial(loop_path, n_frames), renderer.generator.config.z_dim)
    composed = []

    def record(frames: torch.Tensor, start: int) -> torch.Tensor:
        composed.append(to_uint8_hwc(frames))
        return frames

    chunks = renderer.chunks([latents], config.chunk_frames)
    first = write_clips(chunks, [ClipJob(path, effects=record)], n_frames, composition, config, yuv_on_device=yuv_on_device)[0]
    return first, np.concatenate(composed)


def test_pipeline_forced_to_planes_on_the_cpu_renders_the_clip_rgb_would(tiny_run, tmp_path):
    """The GPU's path on the CPU: the canvas at the output size (oversample 0), converted in torch. The tiny
    model's pictures are grainy, so each encode is ~31 dB from the frames (both ways) and 34 dB from the other."""
    config = RenderConfig(frame_size_wh=(64, 48), canvas_oversample=0, chunk_frames=4, seed=3)
    first_planes, composed = render_loop_clip(tiny_run, tmp_path / "planes.mp4", config, 9, yuv_on_device=True)
    first_rgb, composed_rgb = render_loop_clip(tiny_run, tmp_path / "rgb.mp4", config, 9, yuv_on_device=False)
    assert np.array_equal(composed, composed_rgb) and composed.shape == (9, 48, 64, 3)
    assert np.array_equal(first_planes, composed[0]) and np.array_equal(first_rgb, composed[0])  # the contact sheet's frame
    from_planes, from_rgb = decode_clip(tmp_path / "planes.mp4"), decode_clip(tmp_path / "rgb.mp4")
    assert len(from_planes.frames) == 9 and from_planes.seconds == pytest.approx(9 / 30, abs=1e-6)
    assert not np.array_equal(from_planes.frames, from_rgb.frames)  # the planes path was taken: swscale filters chroma otherwise
    assert psnr_db(from_planes.frames, composed) > psnr_db(from_rgb.frames, composed) - 1
    assert psnr_db(from_planes.frames, from_rgb.frames) > 30
