"""Compression: JPEG per frame (OpenCV) and a real video-codec pass (H.264 or MPEG-2 via PyAV).

Both run on the CPU on uint8 frames (the codecs are CPU libraries) and return floats on the
input's device. The codec pass encodes the window as one short clip, so motion and the GOP
structure shape the artefacts as they do in a real file; x264 runs single-threaded so the bytes,
and so the replay, are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from .params import (
    Batched,
    Op,
    OpConfig,
    choice,
    frames_to_planes,
    owned,
    planes_to_frames,
    randint,
    register,
    span,
    stack,
    uniform,
    walk,
)


def _to_bgr(x: Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] -> (T, H, W, 3) uint8 BGR on the CPU (rounded)."""
    return planes_to_frames(x.detach().float().cpu().numpy(), bgr=True)


def _from_bgr(frames: np.ndarray, like: Tensor, into: bool = False) -> Tensor:
    """(T, H, W, 3) uint8 BGR -> (T, C, H, W) float like `like` (C = 1: Rec. 601 luma).
    `into`: written into `like` itself (a contiguous float32 CPU RGB clip that is ours)."""
    if (
        into
        and like.shape[1] == 3
        and like.device.type == "cpu"
        and like.dtype == torch.float32
        and like.is_contiguous()
    ):
        frames_to_planes(frames, bgr=True, out=like.numpy())
        return like
    y = torch.from_numpy(frames_to_planes(frames, bgr=True)).to(like.device, like.dtype)
    if like.shape[1] == 1:
        y = y[:, :1] * 0.299 + y[:, 1:2] * 0.587 + y[:, 2:3] * 0.114
    return y


# ----------------------------------------------------------------------------- JPEG


class JpegConfig(OpConfig):
    quality: tuple[int, int] = span((30, 85), 1, 100)


@dataclass(frozen=True)
class JpegParams:
    qualities: Tensor  # (T,) int64 JPEG quality per frame (drifts around the window's)


def sample_jpeg(
    g: torch.Generator, cfg: JpegConfig, t: int, h: int, w: int, bank=None
) -> JpegParams:
    q = uniform(g, *cfg.quality)
    qs = (q + 3 * walk(g, t, 1.0, pull=0.5)).round().clamp(cfg.quality[0], cfg.quality[1])
    return JpegParams(qs.to(torch.int64))


def jpeg(x: Tensor, p: Batched) -> Tensor:
    """JPEG-compress every frame. `x`: (B, T, C, H, W); `p`: batched. Returns the same shape."""
    b, t, c, h, w = x.shape
    frames = _to_bgr(x.reshape(b * t, c, h, w))
    qs = p.qualities.reshape(b * t).tolist()
    for i, q in enumerate(qs):
        ok, buf = cv2.imencode(".jpg", frames[i], [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert ok and dec is not None, "OpenCV failed to round-trip a JPEG"
        frames[i] = dec
    # when x is ours the reshape is a view of it
    return _from_bgr(frames, x.reshape(b * t, c, h, w), owned(x)).reshape(b, t, c, h, w)


# ----------------------------------------------------------------------------- video codec

Codec = Literal["h264", "mpeg2"]


class CodecConfig(OpConfig):
    codec: tuple[Codec, ...] = ("h264", "mpeg2")
    crf: tuple[int, int] = span((26, 40), 0, 51)  # h264
    qscale: tuple[int, int] = span((4, 16), 1, 31)  # mpeg2
    gop: tuple[int, int] = span((4, 12), 1, 250)


@dataclass(frozen=True)
class CodecParams:
    codec: str  # h264 | mpeg2
    quality: int  # CRF (h264) or fixed qscale (mpeg2)
    gop: int  # keyframe interval


def sample_codec(
    g: torch.Generator, cfg: CodecConfig, t: int, h: int, w: int, bank=None
) -> CodecParams:
    codec = choice(g, cfg.codec)
    q = randint(g, *(cfg.crf if codec == "h264" else cfg.qscale))
    return CodecParams(codec, q, randint(g, *cfg.gop))


def codec_roundtrip(
    frames: np.ndarray, codec: str, quality: int, gop: int, pixels: str = "rgb24"
) -> np.ndarray:
    """Encode (T, H, W, 3) uint8 frames (`pixels`: rgb24 or bgr24) with `codec` in memory and
    decode them again, in the same layout.

    The packets go straight from the encoder to a decoder (no container to mux, demux and
    probe: 10-20% less CPU per window), with the encoder set up as a Matroska stream of 24 fps
    sets it up (`add_stream`'s defaults, global headers handed to the decoder as extradata),
    so the pixels are those of a round trip through a `.mkv` in memory, bit for bit.
    """
    from fractions import Fraction

    import av  # heavy; only this op needs it
    from av.codec.context import Flags
    from av.video.reformatter import VideoReformatter

    t, h, w, _ = frames.shape
    eh, ew = h + h % 2, w + w % 2  # yuv420p needs even sizes: pad by edge replication
    if (eh, ew) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, eh - h), (0, ew - w), (0, 0)), mode="edge")
    if codec == "h264":
        enc = av.CodecContext.create("libx264", "w")
        enc.options = {
            "crf": str(quality),
            "preset": "superfast",  # deblocking and CABAC kept; 1.6x veryfast's speed
            "threads": "1",
            "tune": "zerolatency",
            "x264-params": "log=-1",
        }
        dec = av.CodecContext.create("h264", "r")
    else:
        enc = av.CodecContext.create("mpeg2video", "w")
        # A fixed quantiser: qmin = qmax = qscale (what `-q:v` amounts to for MPEG-2).
        enc.qmin = enc.qmax = quality
        enc.options = {"threads": "1"}
        dec = av.CodecContext.create("mpeg2video", "r")
    # As `OutputContainer.add_stream(codec, rate=24)` and a Matroska muxer set the encoder up.
    enc.width, enc.height, enc.pix_fmt = ew, eh, "yuv420p"
    enc.bit_rate, enc.bit_rate_tolerance = 0, 128000
    enc.framerate, enc.time_base = Fraction(24), Fraction(1, 24)
    enc.flags |= Flags.global_header
    enc.gop_size = gop
    enc.open()
    dec.extradata = enc.extradata
    dec.thread_count = 1
    # One converter for the window (`to_ndarray(format=...)` makes a swscale context for each
    # frame: 0.70 ms a 256^2 frame against 0.58), the same pixels.
    convert = VideoReformatter()
    dec_frames: list[np.ndarray] = []

    def decode(packets: Any) -> None:
        for pkt in packets:
            for fr in dec.decode(pkt):
                dec_frames.append(convert.reformat(fr, format=pixels).to_ndarray())

    for f in frames:
        decode(enc.encode(av.VideoFrame.from_ndarray(f, format=pixels)))
    decode(enc.encode(None))
    decode([None])  # drain the decoder
    got = np.stack(dec_frames)[:t, :h, :w]
    if len(got) < t:  # never expected; keep the shape contract
        got = np.concatenate([got, np.repeat(got[-1:], t - len(got), 0)])
    return got


def codec(x: Tensor, p: Batched) -> Tensor:
    """Pass each window through a video codec. `x`: (B, T, C, H, W). Returns the same shape."""
    b, t, c, h, w = x.shape
    mine = owned(x)
    out = []
    for i in range(b):
        frames = _to_bgr(x[i])
        dec = codec_roundtrip(frames, p.codec, int(p.quality[i]), int(p.gop[i]), "bgr24")
        out.append(_from_bgr(dec, x[i], mine))
    return stack(out)


register(
    Op(
        "jpeg",
        JpegParams,
        JpegConfig,
        sample_jpeg,
        lambda x, p, bank: jpeg(x, p),
        doc="JPEG compression per frame (OpenCV)",
    )
)
register(
    Op(
        "codec",
        CodecParams,
        CodecConfig,
        sample_codec,
        lambda x, p, bank: codec(x, p),
        doc="a real H.264 / MPEG-2 encode and decode of the window (PyAV)",
    )
)
