"""The three networks of the demo model: a small VAE (8x down-sampling, 4 latent channels, as SD's),
a text encoder over CLIP token ids, and a conditional UNet with self- and cross-attention.

Attention is written with matmul/softmax (no fused kernels) so torch.onnx exports plain ONNX ops.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LATENT_CHANNELS = 4
TEXT_WIDTH = 96
SEQ_LEN = 77
# The UNet reads the first CONTEXT_TOKENS text states (start token + 22 tokens + end token is more
# than any caption of the demo vocabulary needs). With the causal text encoder those states do not
# depend on the padding after them, so training can skip the other 53 positions: about 3x cheaper.
CONTEXT_TOKENS = 24


def _group_norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if c % 8 == 0 else 1, c)


# ---------------------------------------------------------------------------------------------- VAE


class VaeEncoder(nn.Module):
    """64x64 RGB → 8x8 latents. Deliberately light: the images are flat colours and sharp edges, and
    the encoder must train in minutes on two shared CPU cores."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 24, 4, stride=2, padding=1), nn.SiLU(),  # 32
            nn.Conv2d(24, 48, 4, stride=2, padding=1), nn.SiLU(),  # 16
            nn.Conv2d(48, 64, 4, stride=2, padding=1), nn.SiLU(),  # 8
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, 2 * LATENT_CHANNELS, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x)
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-20, 5)


class VaeDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(LATENT_CHANNELS, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(64, 48, 4, stride=2, padding=1), nn.SiLU(),  # 16
            nn.Conv2d(48, 48, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(48, 24, 4, stride=2, padding=1), nn.SiLU(),  # 32
            nn.Conv2d(24, 24, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(24, 16, 4, stride=2, padding=1), nn.SiLU(),  # 64
            nn.Conv2d(16, 3, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# ------------------------------------------------------------------------------------- text encoder


class Attention(nn.Module):
    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        b, n, d = x.shape
        h = self.heads
        q = self.to_q(x).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.to_k(ctx).reshape(b, -1, h, d // h).transpose(1, 2)
        v = self.to_v(ctx).reshape(b, -1, h, d // h).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(d // h))
        if mask is not None:
            scores = scores + mask
        w = torch.softmax(scores, dim=-1)
        return self.to_out((w @ v).transpose(1, 2).reshape(b, n, d))


class TextEncoder(nn.Module):
    """Token ids [B, 77] → hidden states [B, 77, TEXT_WIDTH].

    Only the CLIP ids that occur in the training captions get an embedding: `remap` sends every
    CLIP id (49408 of them) to a row of a small table, and all other ids to row 0, so the file stays
    small while still reading the real CLIP token ids the engine produces."""

    def __init__(self, used_ids: list[int], vocab_size: int = 49408, layers: int = 2) -> None:
        # Causal, like CLIP's text transformer: a position sees only the tokens before it.
        super().__init__()
        remap = torch.zeros(vocab_size, dtype=torch.int64)
        for i, tid in enumerate(sorted(used_ids)):
            remap[tid] = i + 1
        self.register_buffer("remap", remap)
        self.embed = nn.Embedding(len(used_ids) + 1, TEXT_WIDTH)
        self.pos = nn.Parameter(torch.zeros(SEQ_LEN, TEXT_WIDTH))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(
                nn.ModuleDict(
                    {
                        "ln1": nn.LayerNorm(TEXT_WIDTH),
                        "attn": Attention(TEXT_WIDTH),
                        "ln2": nn.LayerNorm(TEXT_WIDTH),
                        "ff": nn.Sequential(nn.Linear(TEXT_WIDTH, 4 * TEXT_WIDTH), nn.GELU(), nn.Linear(4 * TEXT_WIDTH, TEXT_WIDTH)),
                    }
                )
            )
        self.ln = nn.LayerNorm(TEXT_WIDTH)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        idx = self.remap[input_ids.long()]
        n = idx.shape[1]
        x = self.embed(idx) + self.pos[:n]
        mask = torch.full((n, n), float("-inf")).triu(1)
        for blk in self.blocks:
            x = x + blk["attn"](blk["ln1"](x), mask=mask)
            x = x + blk["ff"](blk["ln2"](x))
        return self.ln(x)


# --------------------------------------------------------------------------------------------- UNet


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.n1 = _group_norm(cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.n2 = _group_norm(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class SpatialTransformer(nn.Module):
    def __init__(self, c: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = _group_norm(c)
        self.ln1 = nn.LayerNorm(c)
        self.self_attn = Attention(c, heads=heads)
        self.ln2 = nn.LayerNorm(c)
        self.cross_attn = Attention(c, TEXT_WIDTH, heads=heads)
        self.ln3 = nn.LayerNorm(c)
        self.ff = nn.Sequential(nn.Linear(c, 3 * c), nn.GELU(), nn.Linear(3 * c, c))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        t = t + self.self_attn(self.ln1(t))
        t = t + self.cross_attn(self.ln2(t), context)
        t = t + self.ff(self.ln3(t))
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, c1: int = 64, c2: int = 96) -> None:
        super().__init__()
        tdim = 4 * c1
        self.c1 = c1
        self.temb = nn.Sequential(nn.Linear(c1, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.conv_in = nn.Conv2d(LATENT_CHANNELS, c1, 3, padding=1)
        self.d1 = ResBlock(c1, c1, tdim)
        self.a1 = SpatialTransformer(c1)
        self.down = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.d2 = ResBlock(c1, c2, tdim)
        self.a2 = SpatialTransformer(c2)
        self.u2 = ResBlock(c2, c2, tdim)
        self.au2 = SpatialTransformer(c2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_conv = nn.Conv2d(c2, c2, 3, padding=1)
        self.u1 = ResBlock(c2 + c1, c1, tdim)
        self.au1 = SpatialTransformer(c1)
        self.n_out = _group_norm(c1)
        self.conv_out = nn.Conv2d(c1, LATENT_CHANNELS, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        # One timestep for the whole batch or one per sample: both are what exporters produce.
        t = timestep.reshape(-1).expand(sample.shape[0])
        temb = self.temb(timestep_embedding(t, self.c1))
        ctx = encoder_hidden_states[:, :CONTEXT_TOKENS]
        h0 = self.conv_in(sample)
        h1 = self.a1(self.d1(h0, temb), ctx)
        h = self.down(h1)
        h2 = self.a2(self.d2(h, temb), ctx)
        h = self.au2(self.u2(h2, temb), ctx)
        # Crop back to the skip's size so odd latent sizes (e.g. 72 px → 9 latents) work too.
        h = self.up_conv(self.up(h))[:, :, : h1.shape[2], : h1.shape[3]]
        h = self.au1(self.u1(torch.cat([h, h1], 1), temb), ctx)
        return self.conv_out(F.silu(self.n_out(h)))
