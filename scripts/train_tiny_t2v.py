"""Train the embedded tiny text-to-video model (videoaccel/tiny) on procedurally generated clips.

Stage 1 trains the Wan VAE (reconstruction + a small KL) and records the latent mean/std in its
config (WanPipeline un-normalises with them). Stage 2 trains the Wan transformer and the small
UMT5 text encoder with the flow-matching objective the stock scheduler integrates (x_t = (1 - s)
x0 + s eps, target eps - x0, timestep = 1000 s, shifted like the scheduler), with 10% of prompts
dropped to "" for classifier-free guidance. Seeded; saves a diffusers directory in fp16 with
weight files of at most 14 MB.

    python scripts/train_tiny_t2v.py --out assets/tiny-t2v --vae-minutes 4 --dit-minutes 8     # GPU
    python scripts/train_tiny_t2v.py --out /tmp/t --vae-steps 2 --dit-steps 2 --frames 9 --height 64 --width 64  # smoke
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from videoaccel.tiny import data  # noqa: E402
from videoaccel.tiny.model import DEFAULT_FRAMES, DEFAULT_HEIGHT, DEFAULT_WIDTH, TEXT_LEN, components  # noqa: E402


def clips(rng, n, frames, height, width, device):
    video, prompts, _ = data.batch(rng, n, frames, height, width, "train")
    x = torch.from_numpy(video).to(device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # [B, 3, F, H, W]
    return x, prompts


def encode_text(tokenizer, text_encoder, prompts, device):
    """Exactly what WanPipeline does: embeddings of the real tokens, zeros after them."""
    t = tokenizer(prompts, padding="max_length", max_length=TEXT_LEN, truncation=True, add_special_tokens=True,
                  return_attention_mask=True, return_tensors="pt")
    ids, mask = t.input_ids.to(device), t.attention_mask.to(device)
    emb = text_encoder(ids, mask).last_hidden_state
    return emb * mask[..., None].to(emb.dtype)


def stopper(steps: int | None, minutes: float | None):
    start = time.time()

    def done(i: int) -> bool:
        if steps is not None:
            return i >= steps
        return time.time() - start > 60 * minutes

    return done


def train_vae(vae, args, rng, device, log):
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr_vae, weight_decay=0.0)
    done, i = stopper(args.vae_steps, args.vae_minutes), 0
    vae.train()
    while not done(i):
        x, _ = clips(rng, args.batch, args.frames, args.height, args.width, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample()).sample
        loss = F.mse_loss(rec.float(), x) + 0.1 * F.l1_loss(rec.float(), x) + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if i % 50 == 0:
            log({"stage": "vae", "step": i, "loss": float(loss)})
        i += 1
    vae.eval()
    with torch.no_grad():  # latent statistics for WanPipeline's normalisation
        zs = []
        for _ in range(max(1, 64 // args.batch)):
            x, _ = clips(rng, args.batch, args.frames, args.height, args.width, device)
            zs.append(vae.encode(x).latent_dist.mean.float())
        z = torch.cat(zs)
        mean, std = z.mean((0, 2, 3, 4)), z.std((0, 2, 3, 4)).clamp_min(1e-3)
    vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
    log({"stage": "vae", "done_steps": i, "latents_mean": mean.tolist(), "latents_std": std.tolist()})


def train_dit(comp, args, rng, device, log):
    vae, tr, te, tok = comp["vae"], comp["transformer"], comp["text_encoder"], comp["tokenizer"]
    mean = torch.tensor(vae.config.latents_mean, device=device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=device).view(1, -1, 1, 1, 1)
    shift = comp["scheduler"].config.shift
    params = list(tr.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr_dit, weight_decay=0.01)
    done, i = stopper(args.dit_steps, args.dit_minutes), 0
    vae.eval().requires_grad_(False)
    tr.train()
    te.train()
    while not done(i):
        x, prompts = clips(rng, args.batch, args.frames, args.height, args.width, device)
        prompts = ["" if rng.random() < 0.1 else p for p in prompts]
        with torch.no_grad():
            z0 = (vae.encode(x).latent_dist.sample() - mean) / std
        u = torch.sigmoid(torch.randn(z0.shape[0], device=device))  # logit-normal sigma
        s = shift * u / (1 + (shift - 1) * u)
        eps = torch.randn_like(z0)
        zt = (1 - s.view(-1, 1, 1, 1, 1)) * z0 + s.view(-1, 1, 1, 1, 1) * eps
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            emb = encode_text(tok, te, prompts, device)
            pred = tr(hidden_states=zt, timestep=s * 1000, encoder_hidden_states=emb, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), eps - z0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr = args.lr_dit * min(1.0, (i + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        if i % 50 == 0:
            log({"stage": "dit", "step": i, "loss": float(loss), "lr": lr})
        i += 1
    log({"stage": "dit", "done_steps": i})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="diffusers directory to write")
    ap.add_argument("--resume", help="start from this diffusers directory (e.g. after the VAE stage)")
    ap.add_argument("--stages", default="vae,dit")
    ap.add_argument("--vae-steps", type=int)
    ap.add_argument("--vae-minutes", type=float, default=4.0)
    ap.add_argument("--dit-steps", type=int)
    ap.add_argument("--dit-minutes", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    ap.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    ap.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    ap.add_argument("--lr-vae", type=float, default=1e-3)
    ap.add_argument("--lr-dit", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.resume:
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(args.resume, torch_dtype=torch.float32)
        comp = {k: getattr(pipe, k) for k in ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")}
    else:
        comp = components(args.seed)
    for k in ("text_encoder", "vae", "transformer"):
        comp[k].to(device).float()
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train_log.jsonl"), "a")

    def log(row):
        row["time"] = round(time.time(), 1)
        print(json.dumps(row), flush=True)
        logf.write(json.dumps(row) + "\n")

    stages = args.stages.split(",")
    if "vae" in stages:
        train_vae(comp["vae"], args, rng, device, log)
    if "dit" in stages:
        train_dit(comp, args, rng, device, log)
    from diffusers import WanPipeline

    pipe = WanPipeline(**comp)
    pipe.to(torch.float16)
    pipe.save_pretrained(args.out, safe_serialization=True, max_shard_size="14MB")
    sizes = {os.path.relpath(os.path.join(d, f), args.out): os.path.getsize(os.path.join(d, f))
             for d, _, fs in os.walk(args.out) for f in fs if f.endswith(".safetensors")}
    log({"saved": args.out, "weights_mb": round(sum(sizes.values()) / 2 ** 20, 2), "largest_mb": round(max(sizes.values()) / 2 ** 20, 2),
         "params_m": round(sum(p.numel() for k in ("text_encoder", "vae", "transformer") for p in comp[k].parameters()) / 1e6, 2)})


if __name__ == "__main__":
    main()
