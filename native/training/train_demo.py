"""Trains the `atelier-demo-shapes` model from scratch and exports it in the ONNX Stable Diffusion
folder layout the engine reads. See README.md next to this file.

    /usr/bin/python3 native/training/train_demo.py --out native/models/atelier-demo-shapes

Phases (each checkpointed under --work, so an interrupted run resumes where it stopped):
  1. render the synthetic data set (shapes.py),
  2. train the VAE (encoder + decoder),
  3. encode the data set to latents and derive the latent scaling factor,
  4. train the text encoder and the UNet together (epsilon prediction, SD 1.5 noise schedule,
     10 % empty captions for classifier-free guidance, EMA of the weights),
  5. export ONNX + configs + tokenizer + atelier.json + manifest.sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402
import shapes  # noqa: E402
from clip_bpe import ClipBpe  # noqa: E402
from nets import CONTEXT_TOKENS, LATENT_CHANNELS, SEQ_LEN, TextEncoder, UNet, VaeDecoder, VaeEncoder  # noqa: E402

HERE = Path(__file__).resolve().parent
NATIVE = HERE.parent
CLIP_DIR = NATIVE / "fixtures" / "clip"
MODEL_ID = "atelier-demo-shapes"

# SD 1.5's noise schedule; the engine's schedulers read the same numbers from scheduler_config.json.
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.14.0",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "trained_betas": None,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def alphas_cumprod() -> torch.Tensor:
    c = SCHEDULER_CONFIG
    betas = torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, c["num_train_timesteps"], dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def all_captions_vocabulary(bpe: ClipBpe) -> list[int]:
    """Every CLIP id any caption can contain (captions are drawn from a small grammar)."""
    words: set[str] = {"a", "on", "with", "background", "shape", "in", "the", "at", "corner"}
    words |= set(shapes.COLOURS) | set(shapes.SHAPES)
    for phrases in shapes.POSITION_PHRASES.values():
        for p in phrases:
            words |= set(p.split())
    for ws in shapes.SIZE_WORDS.values():
        words |= set(ws)
    ids: set[int] = {bpe.bos, bpe.eos}
    for w in sorted(words):
        ids |= set(bpe.encode(w)[1:-1]) - {bpe.pad}
        ids |= set(bpe.encode(w))
    return sorted(ids)


def train_vae(images: np.ndarray, steps: int, work: Path, seed: int) -> tuple[VaeEncoder, VaeDecoder]:
    path = work / f"vae-{steps}.pt"
    enc, dec = VaeEncoder(), VaeDecoder()
    if path.exists():
        state = torch.load(path)
        enc.load_state_dict(state["enc"])
        dec.load_state_dict(state["dec"])
        log(f"vae: loaded {path}")
        return enc, dec
    torch.manual_seed(seed)
    enc, dec = VaeEncoder(), VaeDecoder()
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=2e-3)
    data = torch.from_numpy(images)
    t0 = time.time()
    for step in range(1, steps + 1):
        lr = 2e-3 * min(1.0, step / 100) * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)
        for group in opt.param_groups:
            group["lr"] = lr
        x = data[torch.from_numpy(rng.integers(len(data), size=32))]
        mean, logvar = enc(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        rec = dec(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-4 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            log(f"vae {step}/{steps} loss {loss.item():.4f} kl {kl.item():.2f} ({time.time() - t0:.0f} s)")
        if step % 500 == 0 or step == steps:
            # The checker's reading of VAE round trips: the ceiling of what the UNet can reach through this VAE.
            log(f"vae {step}/{steps} round trips read right: {evaluate.reconstruction_accuracy(enc, dec)[1] * 100:.1f} %")
    torch.save({"enc": enc.state_dict(), "dec": dec.state_dict()}, path)
    return enc, dec


class Ema:
    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for s, p in zip(self.shadow, self.params):
            s.mul_(d).add_(p.detach(), alpha=1 - d)

    @torch.no_grad()
    def copy_to(self, modules: list[torch.nn.Module]) -> None:
        params = [p for m in modules for p in m.parameters()]
        for s, p in zip(self.shadow, params):
            p.copy_(s)


def train_unet(
    latents: torch.Tensor,
    attrs: list[dict[str, str]],
    bpe: ClipBpe,
    used_ids: list[int],
    steps: int,
    batch: int,
    work: Path,
    seed: int,
    checkpoint_every: int,
    dec: VaeDecoder,
    scaling: float,
    eval_every: int,
    decay_steps: int,
) -> tuple[TextEncoder, UNet, int]:
    torch.manual_seed(seed + 1)
    te, unet = TextEncoder(used_ids), UNet()
    n_params = sum(p.numel() for p in unet.parameters())
    n_te = sum(p.numel() for p in te.parameters())
    log(f"unet {n_params / 1e6:.2f} M parameters, text encoder {n_te / 1e6:.2f} M")
    opt = torch.optim.AdamW(list(te.parameters()) + list(unet.parameters()), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    ema = Ema([te, unet], 0.999)
    g = torch.Generator().manual_seed(seed + 2)
    rng = np.random.default_rng(seed + 3)
    start = 0
    done = sorted(work.glob("unet-step*.pt"), key=lambda p: int(p.stem.split("step")[1]))
    done = [p for p in done if int(p.stem.split("step")[1]) <= steps]
    if done:
        state = torch.load(done[-1])
        te.load_state_dict(state["te"])
        unet.load_state_dict(state["unet"])
        opt.load_state_dict(state["opt"])
        ema.shadow = state["ema"]
        ema.updates = state["ema_updates"]
        g.set_state(state["g"])
        rng.bit_generator.state = state["rng"]
        start = state["step"]
        log(f"unet: resumed from {done[-1]} at step {start}")
    ab = alphas_cumprod()
    snr = ab / (1 - ab)
    weight = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weighting for epsilon prediction
    t0 = time.time()
    running = 0.0
    for step in range(start + 1, steps + 1):
        # Warm-up, then constant (so a longer run passes through the same checkpoints), then a linear
        # cool-down over the last `decay_steps`: the small model's shapes sharpen once the steps shrink.
        lr = 1e-3 * min(1.0, step / 100) * min(1.0, (steps - step + 1) / decay_steps if decay_steps else 1.0)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = rng.integers(len(latents), size=batch)
        caps = [shapes.caption(attrs[i], rng) for i in idx]
        ids = torch.tensor([bpe.encode(c)[:CONTEXT_TOKENS] for c in caps], dtype=torch.int64)
        x0 = latents[torch.from_numpy(idx)]
        t = torch.randint(0, len(ab), (batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = ab[t].sqrt()[:, None, None, None]
        s = (1 - ab[t]).sqrt()[:, None, None, None]
        pred = unet(a * x0 + s * noise, t, te(ids))
        loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * weight[t]).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(te.parameters()) + list(unet.parameters()), 1.0)
        opt.step()
        ema.update()
        running += loss.item()
        if step % 50 == 0:
            rate = (time.time() - t0) / (step - start)
            log(f"unet {step}/{steps} loss {running / 50:.4f} ({rate:.2f} s/step)")
            running = 0.0
        if eval_every and (step % eval_every == 0 or step == steps):
            # The held-out prompts through a DDIM sampler here, read by the same checker the engine's tests use.
            live = [p.detach().clone() for p in ema.params]
            ema.copy_to([te, unet])
            rate, misses = evaluate.accuracy(unet, te, dec, bpe, scaling, ab)
            with torch.no_grad():
                for p, v in zip(ema.params, live):
                    p.copy_(v)
            log(f"unet {step}/{steps} held-out prompts drawn right (DDIM 25, guidance 7.5): {rate * 100:.1f} %")
            for m in misses[:6]:
                log(f"  miss: {m}")
        if step % checkpoint_every == 0 or step == steps:
            torch.save(
                {
                    "te": te.state_dict(), "unet": unet.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.shadow, "ema_updates": ema.updates, "g": g.get_state(),
                    "rng": rng.bit_generator.state, "step": step,
                },
                work / f"unet-step{step}.pt",
            )
    ema.copy_to([te, unet])
    return te, unet, steps


class _EncoderMean(torch.nn.Module):
    def __init__(self, enc: VaeEncoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        return self.enc(sample)[0]


def export(out: Path, te: TextEncoder, unet: UNet, enc: VaeEncoder, dec: VaeDecoder, scaling: float, meta: dict) -> None:
    if out.exists():
        shutil.rmtree(out)
    for sub in ("text_encoder", "unet", "vae_decoder", "vae_encoder", "tokenizer", "scheduler"):
        (out / sub).mkdir(parents=True)
    for m in (te, unet, enc, dec):
        m.eval()
    kw = dict(opset_version=17, do_constant_folding=True)
    with torch.no_grad():
        torch.onnx.export(
            te, (torch.zeros(1, SEQ_LEN, dtype=torch.int32),), str(out / "text_encoder/model.onnx"),
            input_names=["input_ids"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}}, **kw,
        )
        torch.onnx.export(
            unet,
            (torch.zeros(2, LATENT_CHANNELS, 8, 8), torch.zeros(2, dtype=torch.int64), torch.zeros(2, SEQ_LEN, te.ln.normalized_shape[0])),
            str(out / "unet/model.onnx"),
            input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
            dynamic_axes={
                "sample": {0: "batch", 2: "height", 3: "width"},
                "timestep": {0: "batch"},
                "encoder_hidden_states": {0: "batch"},
                "out_sample": {0: "batch", 2: "height", 3: "width"},
            },
            **kw,
        )
        torch.onnx.export(
            dec, (torch.zeros(1, LATENT_CHANNELS, 8, 8),), str(out / "vae_decoder/model.onnx"),
            input_names=["latent_sample"], output_names=["sample"],
            dynamic_axes={"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}}, **kw,
        )
        torch.onnx.export(
            _EncoderMean(enc), (torch.zeros(1, 3, 64, 64),), str(out / "vae_encoder/model.onnx"),
            input_names=["sample"], output_names=["latent_sample"],
            dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "latent_sample": {0: "batch", 2: "height", 3: "width"}}, **kw,
        )
    for f in ("vocab.json", "merges.txt", "LICENSE"):
        shutil.copyfile(CLIP_DIR / f, out / "tokenizer" / f)
    write = lambda rel, obj: (out / rel).write_text(json.dumps(obj, indent=2) + "\n", "utf8")  # noqa: E731
    write("tokenizer/tokenizer_config.json", {"model_max_length": SEQ_LEN, "pad_token": "<|endoftext|>", "do_lower_case": True})
    write("scheduler/scheduler_config.json", SCHEDULER_CONFIG)
    write("vae_decoder/config.json", {"latent_channels": LATENT_CHANNELS, "sample_size": shapes.SIZE, "scaling_factor": scaling})
    write("vae_encoder/config.json", {"latent_channels": LATENT_CHANNELS, "sample_size": shapes.SIZE, "scaling_factor": scaling})
    write("unet/config.json", {"in_channels": LATENT_CHANNELS, "out_channels": LATENT_CHANNELS, "sample_size": shapes.SIZE // 8, "cross_attention_dim": te.ln.normalized_shape[0]})
    write("text_encoder/config.json", {"hidden_size": te.ln.normalized_shape[0], "max_position_embeddings": SEQ_LEN})
    write(
        "model_index.json",
        {
            "_class_name": "OnnxStableDiffusionPipeline",
            "_diffusers_version": "0.14.0",
            "requires_safety_checker": False,
            "feature_extractor": [None, None],
            "safety_checker": [None, None],
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["diffusers", "OnnxRuntimeModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "OnnxRuntimeModel"],
            "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
            "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
        },
    )
    write("atelier.json", meta)
    lines = []
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.sha256":
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}")
    (out / "manifest.sha256").write_text("\n".join(lines) + "\n", "utf8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"exported {out} ({size / 1e6:.1f} MB)")


def model_metadata(vae_steps: int, unet_steps: int, seed: int) -> dict:
    return {
        "id": MODEL_ID,
        "name": "Atelier demo: shapes",
        "description": (
            "A tiny model trained from scratch by Atelier that draws one simple shape in a plain colour on a plain "
            "background at 64x64. It shows that the app works end to end; for real pictures, import a Stable "
            "Diffusion 1.5 or SD-Turbo ONNX export."
        ),
        "width": shapes.SIZE,
        "height": shapes.SIZE,
        "vocabulary": {
            "shapes": list(shapes.SHAPES),
            "colours": list(shapes.COLOURS),
            "backgrounds": list(shapes.COLOURS),
            "positions": list(shapes.POSITIONS),
            "sizes": list(shapes.SIZES),
        },
        "examples": [
            "a red circle on a blue background",
            "small yellow triangle in the top left on black",
            "a large white square on a green background",
        ],
        "training": {"script": "native/training/train_demo.py", "seed": seed, "vaeSteps": vae_steps, "unetSteps": unet_steps},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=NATIVE / "models" / MODEL_ID)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "atelier-demo-training")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--images", type=int, default=12000)
    ap.add_argument("--vae-steps", type=int, default=1200)
    ap.add_argument("--unet-steps", type=int, default=5000)
    ap.add_argument("--decay-steps", type=int, default=1000, help="the UNet's learning rate falls linearly to 0 over the last N steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=500, help="check the held-out prompts every N UNet steps (0: never)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    bpe = ClipBpe(CLIP_DIR)
    # The real CLIP ids of a few words (from OpenAI's tokenizer), so a BPE bug cannot go unnoticed.
    assert bpe.encode("a red circle")[:5] == [49406, 320, 736, 7117, 49407], bpe.encode("a red circle")[:5]
    used = all_captions_vocabulary(bpe)
    log(f"{len(used)} CLIP token ids in the caption vocabulary")

    images, attrs = shapes.make_dataset(args.images, args.seed)
    log(f"rendered {len(images)} images")
    enc, dec = train_vae(images, args.vae_steps, args.work, args.seed)
    cached = args.work / f"latents-vae{args.vae_steps}-n{args.images}.pt"
    if cached.exists():
        state = torch.load(cached)
        latents, scaling = state["latents"], state["scaling"]
    else:
        with torch.no_grad():
            enc.eval()
            latents = torch.cat([enc(torch.from_numpy(images[i : i + 512]))[0] for i in range(0, len(images), 512)])
        scaling = float(1.0 / latents.std())
        latents = latents * scaling
        torch.save({"latents": latents, "scaling": scaling}, cached)
    log(f"latent scaling factor {scaling:.5f}")
    te, unet, steps = train_unet(
        latents, attrs, bpe, used, args.unet_steps, args.batch, args.work, args.seed, args.checkpoint_every, dec, scaling, args.eval_every, args.decay_steps
    )
    export(args.out, te, unet, enc, dec, scaling, model_metadata(args.vae_steps, steps, args.seed))
    log(f"done in {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
