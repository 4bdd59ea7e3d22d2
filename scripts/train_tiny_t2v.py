"""Train the embedded tiny text-to-video model (videoaccel/tiny) on procedurally generated clips.

Stage 1 trains the Wan VAE as a deterministic autoencoder on short clips cropped around the shape
(foreground pixels weighted 10x) and records the latent mean/std in its config (WanPipeline
un-normalises with them). Stage 2 trains the Wan transformer and the small UMT5 text encoder with
the flow-matching objective the stock scheduler integrates (x_t = (1 - s) x0 + s eps, target
eps - x0, timestep = 1000 s, shifted like the scheduler), 10% of prompts dropped to "" for
classifier-free guidance, on a pool of encoded clips refreshed as it trains; the saved weights are
an EMA. Seeded; saves a diffusers directory in fp16 with weight files of at most 14 MB.

The shipped assets/tiny-t2v came from two H100 calls (train_log.jsonl holds both logs):

    python scripts/train_tiny_t2v.py --out /tmp/tiny-t2v --stages vae,dit --vae-minutes 5.4 --dit-minutes 2.7 --pool 1024
    python scripts/train_tiny_t2v.py --resume assets/tiny-t2v --out /tmp/tiny-t2v --stages dit --dit-minutes 5.3 \
        --dit-seed-offset 1 --pool 1024
    python scripts/train_tiny_t2v.py --out /tmp/t --vae-steps 2 --dit-steps 2 --frames 9 --height 64 --width 64 \
        --workers 0 --vae-crop 32 --geometries 9x64x64:2 --fresh 1 --pool 2    # CPU smoke run
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
from videoaccel.tiny import data, scene  # noqa: E402
from videoaccel.call_defaults import write_call_defaults  # noqa: E402
from videoaccel.tiny.model import DEFAULT_FRAMES, DEFAULT_HEIGHT, DEFAULT_WIDTH, TEXT_LEN, components, tokenizer  # noqa: E402


class Clips(torch.utils.data.IterableDataset):
    """Endless training clips rendered in DataLoader workers (numpy + OpenCV on the CPU keeps the GPU fed);
    worker w draws from its own generator seeded (seed, w), so a run is reproducible for a fixed worker count.
    With ``crop``: crop x crop windows around the named shape (jittered) and its mask, for the autoencoder."""

    def __init__(self, seed: int, batch: int, frames: int, height: int, width: int, crop: int | None = None):
        super().__init__()
        self.seed, self.batch, self.shape, self.crop = seed, batch, (frames, height, width), crop

    def _window(self, rng, spec):
        f, h, w = self.shape
        c = self.crop
        cx, cy = data.trajectory(spec, f, h, w)[f // 2] + rng.uniform(-c / 3, c / 3, 2)
        x0, y0 = (int(np.clip(round(p - c / 2), 0, n - c)) for p, n in ((cx, w), (cy, h)))
        return slice(y0, y0 + c), slice(x0, x0 + c)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            if not self.crop:
                video, prompts, _ = scene.batch(rng, self.batch, *self.shape, "train")
                yield torch.from_numpy(video), prompts
                continue
            specs = [data.sample_spec(rng, "train") for _ in range(self.batch)]
            videos, masks = [], []
            for s in specs:
                v, m = scene.render(s, *self.shape, with_mask=True)
                ys, xs = self._window(rng, s)
                videos.append(v[:, ys, xs])
                masks.append(m[:, ys, xs])
            yield torch.from_numpy(np.stack(videos)), torch.from_numpy(np.stack(masks))


def loader(args, batch: int, frames: int, seed: int, crop: int | None = None, size: tuple[int, int] | None = None):
    """Batches of (float [B, 3, F, H, W] in [-1, 1] on the device, prompts or float masks [B, 1, F, H, W])."""
    height, width = size or (args.height, args.width)
    ds = Clips(seed, batch, frames, height, width, crop)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=args.workers, pin_memory=True,
                                     persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers else None)
    for video, extra in dl:
        x = video.to(args.device, non_blocking=True).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
        if isinstance(extra, torch.Tensor):
            extra = extra.to(args.device, non_blocking=True)[:, None].float() / 255.0
        else:
            extra = list(extra)
        yield x, extra


def encode_text(tokenizer, text_encoder, prompts, device):
    """Exactly what WanPipeline does: embeddings of the real tokens, zeros after them."""
    t = tokenizer(prompts, padding="max_length", max_length=TEXT_LEN, truncation=True, add_special_tokens=True,
                  return_attention_mask=True, return_tensors="pt")
    ids, mask = t.input_ids.to(device), t.attention_mask.to(device)
    emb = text_encoder(ids, mask).last_hidden_state
    return emb * mask[..., None].to(emb.dtype)


class Schedule:
    """Stop after a step count or a wall-clock budget; learning rate: linear warm-up, flat, then linear decay
    to 10% over the last ``decay`` fraction of the budget (each call of a resumed run decays on its own)."""

    def __init__(self, lr: float, steps: int | None, minutes: float | None, warmup: int = 200, decay: float = 0.3):
        self.lr, self.steps, self.seconds, self.warmup, self.decay = lr, steps, 60 * (minutes or 0), warmup, decay
        self.start = time.time()

    def progress(self, i: int) -> float:
        return i / self.steps if self.steps is not None else (time.time() - self.start) / self.seconds

    def done(self, i: int) -> bool:
        return self.progress(i) >= 1.0

    def rate(self, i: int) -> float:
        tail = max(0.0, self.progress(i) - (1 - self.decay)) / self.decay
        return self.lr * min(1.0, (i + 1) / self.warmup) * (1 - 0.9 * min(tail, 1.0))


def psnr(a, b) -> float:
    return float(10 * torch.log10(4.0 / F.mse_loss(a.float(), b.float())))


def train_vae(vae, args, device, log):
    """A deterministic autoencoder (the posterior mode is decoded; the transformer later trains on modes too, and a
    tiny L2 keeps latents bounded). Short clips (--vae-frames) cropped to --vae-crop around the named shape (with
    textured background around it), shape pixels weighted --fg-weight: the causal VAE is fully convolutional (but
    for the lowest-resolution attention), so small crops train the same weights faster."""
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr_vae, weight_decay=0.0)
    sched, i = Schedule(args.lr_vae, args.vae_steps, args.vae_minutes), 0
    vae.train()
    batches = loader(args, args.vae_batch, args.vae_frames, args.seed, min(args.vae_crop, args.height, args.width))
    while not sched.done(i):
        x, mask = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            z = vae.encode(x).latent_dist.mode()
            rec = vae.decode(z).sample
        weight = 1 + (args.fg_weight - 1) * mask  # the named shape is small but is what the prompt is about
        loss = (weight * ((rec.float() - x) ** 2 + 0.1 * (rec.float() - x).abs())).mean() + 1e-4 * z.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        for g in opt.param_groups:
            g["lr"] = sched.rate(i)
        opt.step()
        if i % 100 == 0:
            log({"stage": "vae", "step": i, "loss": float(loss), "psnr": psnr(rec, x),
                 "steps_per_s": round(i / (time.time() - sched.start + 1e-9), 2)})
        i += 1
    vae.eval()
    batches = loader(args, 16, args.frames, args.seed + 1)
    with torch.no_grad():  # latent statistics for WanPipeline's normalisation, and full-clip reconstruction quality
        zs, quality = [], []
        for _ in range(4):
            x, _ = next(batches)  # 25-frame full clips: also measures how the short-clip training generalises
            z = vae.encode(x).latent_dist.mode()
            quality.append(psnr(vae.decode(z).sample, x))
            zs.append(z.float())
        z = torch.cat(zs)
        mean, std = z.mean((0, 2, 3, 4)), z.std((0, 2, 3, 4)).clamp_min(1e-3)
    vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
    log({"stage": "vae", "done_steps": i, "full_clip_psnr": sum(quality) / len(quality), "latents_mean": mean.tolist(),
         "latents_std": std.tolist()})


class LatentPool:
    """A ring buffer of normalised clip latents and prompts. Encoding a clip costs far more than a transformer step
    on it, so each step encodes a few fresh clips (--fresh) and trains on a larger batch drawn from the pool: every
    clip is seen several times, at different noise levels."""

    def __init__(self, vae, batches, size: int, device):
        self.vae, self.batches, self.size = vae, batches, size
        self.mean = torch.tensor(vae.config.latents_mean, device=device).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std, device=device).view(1, -1, 1, 1, 1)
        self.z, self.prompts, self.next = None, [""] * size, 0
        while self.add() != 0:  # fill once (the pool size is a multiple of the loader batch)
            pass

    @torch.no_grad()
    def add(self) -> int:
        """Encode one loader batch into the oldest slots; returns the next slot (0 once the pool wrapped)."""
        x, prompts = next(self.batches)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
            z = (self.vae.encode(x).latent_dist.mode().float() - self.mean) / self.std
        if self.z is None:
            self.z = torch.zeros((self.size, *z.shape[1:]), device=z.device)
        idx = [(self.next + k) % self.size for k in range(len(z))]
        self.z[idx] = z
        for k, p in zip(idx, prompts):
            self.prompts[k] = p
        self.next = (self.next + len(z)) % self.size
        return self.next

    def sample(self, n: int, gen: torch.Generator):
        idx = torch.randint(0, self.size, (n,), generator=gen)
        return self.z[idx.to(self.z.device)], [self.prompts[int(k)] for k in idx]


def parse_geometries(text: str) -> list[tuple[tuple[int, int, int], int, float]]:
    """"25x192x320:64:1,49x384x640:8:1" -> [((frames, height, width), batch, weight), ...]."""
    out = []
    for item in text.split(","):
        geo, batch, weight = (item.split(":") + ["", ""])[:3]
        f, h, w = (int(v) for v in geo.split("x"))
        out.append(((f, h, w), int(batch or 64), float(weight or 1.0)))
    return out


class AttentionSharpness:
    """Auxiliary loss (--sharpen LAMBDA): 1 - the softmax mass of each sampled query's top --sharpen-topk keys in
    every self-attention call. Why: trained on this little data, the model's attention stays diffuse (top-10% recall
    ~0.7 after four runs; the q/k gains never grew), while real video DiTs keep ~0.9 there; the testbed must show
    loss the way real models do. Only the training forward is wrapped (diffusers' dispatch_attention_fn in the Wan
    module); the saved model is plain Wan, and the recall it reaches is measured, not assumed."""

    def __init__(self, frac: float, rows: int):
        from diffusers.models.transformers import transformer_wan

        self.module, self.frac, self.rows, self.terms = transformer_wan, frac, rows, []
        self.inner = transformer_wan.dispatch_attention_fn
        transformer_wan.dispatch_attention_fn = self

    def __call__(self, query, key, value, *args, **kwargs):
        out = self.inner(query, key, value, *args, **kwargs)
        b, s, h, d = query.shape
        if torch.is_grad_enabled() and key.shape[1] == s:  # self-attention (cross-attention keys are the text)
            rows = torch.randint(s, (min(self.rows, s),), device=query.device)
            q = query[:, rows].float().transpose(1, 2)  # B, H, R, D
            p = torch.softmax(q @ key.float().permute(0, 2, 3, 1) * d ** -0.5, dim=-1)
            self.terms.append(1 - p.topk(max(1, int(self.frac * s)), dim=-1).values.sum(-1).mean())
        return out

    def loss(self) -> torch.Tensor:
        terms, self.terms = self.terms, []
        return torch.stack(terms).mean()

    def close(self) -> None:
        self.module.dispatch_attention_fn = self.inner


def train_dit(comp, args, rng, device, log):
    """rng: CFG prompt dropout and the geometry of each step; clips come from the loader workers, noise from torch's
    seeded generator. Several geometries (--geometries) train one model: the CPU demo size and the >= 12k-token
    testbed size, so attention is learned at the lengths it is measured at."""
    vae, tr, te, tok = comp["vae"], comp["transformer"], comp["text_encoder"], comp["tokenizer"]
    shift = comp["scheduler"].config.shift
    params = list(tr.parameters()) + list(te.parameters())
    ema = [p.detach().clone() for p in params]
    # q/k RMS-norm gains set how sharp attention can get (logits ~ sqrt(head_dim) * gain^2 at most): at the base rate
    # they stay ~1 for thousands of steps, so they get their own rate (--qk-gain-lr-mult) and, like all 1-d
    # parameters, no weight decay.
    qk = {id(p) for n, p in tr.named_parameters() if ".norm_q." in n or ".norm_k." in n}
    groups = [([p for p in params if p.ndim >= 2], 0.01, 1.0),
              ([p for p in params if p.ndim < 2 and id(p) not in qk], 0.0, 1.0),
              ([p for p in params if id(p) in qk], 0.0, args.qk_gain_lr_mult)]
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": wd, "mult": m} for ps, wd, m in groups], lr=args.lr_dit)
    vae.eval().requires_grad_(False)
    tr.train()
    te.train()
    gen = torch.Generator().manual_seed(args.seed + args.dit_seed_offset)
    geos = parse_geometries(args.geometries)
    pools = []
    for k, ((f, h, w), batch, _) in enumerate(geos):
        fresh = max(1, args.fresh * batch // geos[0][1])
        size = max(fresh, args.pool * batch // geos[0][1] // fresh * fresh)
        batches = loader(args, fresh, f, args.seed + 2 + args.dit_seed_offset + 100 * k, size=(h, w))
        pools.append(LatentPool(vae, batches, size, device))
        log({"stage": "dit", "geometry": f"{f}x{h}x{w}", "batch": batch, "pool_filled": size, "fresh": fresh})
    weights = np.array([g[2] for g in geos]) / sum(g[2] for g in geos)
    sched, i = Schedule(args.lr_dit, args.dit_steps, args.dit_minutes), 0
    losses = [[] for _ in geos]
    sharp, sharp_vals = (AttentionSharpness(args.sharpen_topk, args.sharpen_rows), []) if args.sharpen else (None, [])
    while not sched.done(i):
        k = int(rng.choice(len(geos), p=weights))
        pool, batch = pools[k], geos[k][1]
        if i % args.encode_every == 0:
            pool.add()
        z0, prompts = pool.sample(batch, gen)
        prompts = ["" if rng.random() < 0.1 else p for p in prompts]
        u = torch.sigmoid(torch.randn(z0.shape[0], device=device))  # logit-normal sigma
        s = shift * u / (1 + (shift - 1) * u)
        eps = torch.randn_like(z0)
        zt = (1 - s.view(-1, 1, 1, 1, 1)) * z0 + s.view(-1, 1, 1, 1, 1) * eps
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            emb = encode_text(tok, te, prompts, device)
            pred = tr(hidden_states=zt, timestep=s * 1000, encoder_hidden_states=emb, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), eps - z0)
        total = loss
        if sharp is not None:
            term = sharp.loss()
            sharp_vals.append(float(term.detach()))
            total = loss + args.sharpen * term
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:
            g["lr"] = sched.rate(i) * g["mult"]
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - min(args.ema, (i + 1) / (i + 10)))
        losses[k].append(float(loss))
        if i % 100 == 0:
            gains = [float(p.abs().mean()) for n, p in tr.named_parameters() if ".attn1.norm_q." in n]
            extra = {"top_mass": round(1 - sum(sharp_vals[-50:]) / len(sharp_vals[-50:]), 4)} if sharp_vals else {}
            log({"stage": "dit", "step": i, "qk_gain": round(sum(gains) / len(gains), 3), **extra, "loss": {f"{g[0][0]}x{g[0][1]}x{g[0][2]}": round(sum(v[-50:]) / max(len(v[-50:]), 1), 4)
                                                    for g, v in zip(geos, losses)},
                 "lr": sched.rate(i), "steps_per_s": round(i / (time.time() - sched.start + 1e-9), 2)})
        i += 1
    if sharp is not None:
        sharp.close()
    with torch.no_grad():  # the saved model is the exponential moving average
        for p, e in zip(params, ema):
            p.copy_(e)
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
    ap.add_argument("--vae-batch", type=int, default=48)
    ap.add_argument("--vae-crop", type=int, default=64, help="square crop (pixels) around the shape in VAE training clips")
    ap.add_argument("--fresh", type=int, default=16, help="clips encoded into the latent pool every --encode-every steps")
    ap.add_argument("--encode-every", type=int, default=4)
    ap.add_argument("--pool", type=int, default=2048, help="latent pool size (clips, a multiple of --fresh)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    ap.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    ap.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    ap.add_argument("--lr-vae", type=float, default=1e-3)
    ap.add_argument("--lr-dit", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-frames", type=int, default=17, help="clip length for the VAE stage (4k + 1)")
    ap.add_argument("--workers", type=int, default=min(12, (os.cpu_count() or 2) - 2), help="clip-rendering processes")
    ap.add_argument("--dit-seed-offset", type=int, default=0, help="fresh clips when resuming the transformer stage")
    ap.add_argument("--geometries", default=f"{DEFAULT_FRAMES}x{DEFAULT_HEIGHT}x{DEFAULT_WIDTH}:64",
                    help="transformer training geometries FxHxW:batch:weight, comma-separated (e.g. add 49x384x640:8:1)")
    ap.add_argument("--qk-gain-lr-mult", type=float, default=1.0, help="learning-rate multiplier for q/k norm gains")
    ap.add_argument("--fg-weight", type=float, default=5.0, help="autoencoder loss weight on the named shape's pixels")
    ap.add_argument("--sharpen", type=float, default=0.0, help="weight of the attention-sharpness loss (AttentionSharpness)")
    ap.add_argument("--sharpen-topk", type=float, default=0.1, help="fraction of keys whose mass the sharpness loss raises")
    ap.add_argument("--sharpen-rows", type=int, default=128, help="query rows sampled per self-attention call for it")
    ap.add_argument("--eval", type=int, default=0, help="afterwards, score adherence on this many held-out prompts")
    args = ap.parse_args()
    if args.pool % args.fresh:
        ap.error("--pool must be a multiple of --fresh")

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = args.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    if args.resume:
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(args.resume, torch_dtype=torch.float32)
        comp = {k: getattr(pipe, k) for k in ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")}
        comp["tokenizer"] = tokenizer()  # the grammar may have grown (new words are appended: old ids stay valid)
        if len(comp["tokenizer"]) != comp["text_encoder"].config.vocab_size:
            comp["text_encoder"].resize_token_embeddings(len(comp["tokenizer"]))
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
        train_vae(comp["vae"], args, device, log)
    if "dit" in stages:
        train_dit(comp, args, rng, device, log)
    from diffusers import WanPipeline

    pipe = WanPipeline(**comp)
    pipe.to(torch.float16)
    pipe.text_encoder.to(torch.float32)  # 1.3 MB: loads on a CPU without the fp16 warning, and its config says float32
    pipe.save_pretrained(args.out, safe_serialization=True, max_shard_size="14MB")
    write_call_defaults(args.out, frames=args.frames, height=args.height, width=args.width, max_sequence_length=TEXT_LEN)
    sizes = {os.path.relpath(os.path.join(d, f), args.out): os.path.getsize(os.path.join(d, f))
             for d, _, fs in os.walk(args.out) for f in fs if f.endswith(".safetensors")}
    log({"saved": args.out, "weights_mb": round(sum(sizes.values()) / 2 ** 20, 2), "largest_mb": round(max(sizes.values()) / 2 ** 20, 2),
         "params_m": round(sum(p.numel() for k in ("text_encoder", "vae", "transformer") for p in comp[k].parameters()) / 1e6, 2)})
    if args.eval:
        from videoaccel.tiny import detect, evaluate

        pipe = WanPipeline.from_pretrained(args.out, torch_dtype=torch.bfloat16 if device.type == "cuda" else torch.float32).to(device)
        prompts, seeds, specs = evaluate.heldout(args.eval)
        videos, seconds = evaluate.generate(pipe, prompts, seeds, num_inference_steps=20, guidance_scale=5.0, max_sequence_length=TEXT_LEN,
                                            num_frames=args.frames, height=args.height, width=args.width)
        res = detect.score(videos, specs)
        log({"eval": args.eval, "colour": res["colour"], "direction": res["direction"], "seconds": round(seconds, 1),
             "examples": [[p, d] for p, d in zip(prompts[:8], res["detected"][:8])]})


if __name__ == "__main__":
    main()
