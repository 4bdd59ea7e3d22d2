"""Block layouts: which (query block, key block) pairs a head computes.

One layout describes every head of one attention call. Query tokens in ``q_range`` are cut
into blocks of ``block_m``; each block has a sorted list of key blocks (``lut`` + ``counts``)
taken from ``kv_range`` cut into blocks of ``block_n``. Two compact extras avoid huge LUTs:

- ``kv_always``: token ranges outside ``kv_range`` that every query row visits (joined text
  tokens, sinks), optionally different per sample (valid text length);
- query rows outside ``q_range`` are *dense rows* (e.g. text queries): they visit every key
  block of ``kv_range`` plus ``kv_always``.

Heads have roles, so one launch serves every head of a call whatever its plan: a LUT head follows
its rows; a ``dense_heads`` head runs its ``q_range`` rows as dense rows too (no LUT row spent on
it, so dense heads cost no LUT memory); an ``idle_heads`` head gets no work item and its output
rows are left as they were (the caller writes them: FP8 heads from their own launch, skipped heads
as zeros). The kernels only follow the ``schedule``, so roles need no kernel code.

LUT entries are block indices relative to ``kv_range[0]``; bits 24 and up are reserved for a
pooled level (pyramid attention), so indices must stay below 2**24.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import torch

LEVEL_SHIFT = 24


def num_blocks(lo: int, hi: int, block: int) -> int:
    return max(0, -(-(hi - lo) // block))


@dataclass(frozen=True, eq=False)
class BlockLayout:
    lut: torch.Tensor  # int32 [H, NQB, MAXK]
    counts: torch.Tensor  # int32 [H, NQB]
    seq_q: int
    seq_kv: int
    block_m: int = 128
    block_n: int = 128
    q_range: tuple[int, int] | None = None  # default: (0, seq_q)
    kv_range: tuple[int, int] | None = None  # default: (0, seq_kv)
    kv_always: torch.Tensor | None = None  # int32 [1 or B, R, 2] token ranges [lo, hi)
    dense_heads: tuple[int, ...] = ()  # heads computed dense (their LUT rows are not read)
    idle_heads: tuple[int, ...] = ()  # heads given no work (their output rows are not written)
    validated: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.q_range is None:
            object.__setattr__(self, "q_range", (0, self.seq_q))
        if self.kv_range is None:
            object.__setattr__(self, "kv_range", (0, self.seq_kv))
        if not self.validated:
            self.validate()
            object.__setattr__(self, "validated", True)

    # ---- shape facts -------------------------------------------------------------------
    @property
    def heads(self) -> int:
        return self.lut.shape[0]

    @property
    def num_q_blocks(self) -> int:
        return num_blocks(*self.q_range, self.block_m)

    @property
    def num_kv_blocks(self) -> int:
        return num_blocks(*self.kv_range, self.block_n)

    @property
    def device(self) -> torch.device:
        return self.lut.device

    @property
    def num_text_row_blocks(self) -> int:
        """Dense row blocks every active head runs: rows outside q_range (joined text queries)."""
        return sum(num_blocks(lo, hi, self.block_m) for lo, hi in ((0, self.q_range[0]), (self.q_range[1], self.seq_q)))

    @cached_property
    def dense_row_blocks(self) -> torch.Tensor:
        """int32 [N, 2]: row ranges run as dense rows, cut into blocks of block_m: rows outside q_range,
        then (when some head is dense) the q_range rows, which only dense heads run this way."""
        spans = []
        ranges = [(0, self.q_range[0]), (self.q_range[1], self.seq_q)] + ([self.q_range] if self.dense_heads else [])
        for lo, hi in ranges:
            spans += [(s, min(s + self.block_m, hi)) for s in range(lo, hi, self.block_m)]
        return torch.tensor(spans, dtype=torch.int32, device=self.device).reshape(-1, 2)

    @cached_property
    def schedule(self) -> torch.Tensor:
        return self._build_schedule()

    def reschedule(self) -> None:
        """The counts changed in place (a per-call mask): the schedule follows, in place, on the device."""
        if "schedule" in self.__dict__:
            self.__dict__["schedule"].copy_(self._build_schedule())

    def _build_schedule(self) -> torch.Tensor:
        """int32 work items ``h * (NQB + ND) + qb``: head-major, heaviest first inside each head.

        Head-major keeps the blocks in flight on one head, whose K/V (17-60 MB at video lengths)
        then stays in L2 (measured on H100 at density 0.05: 0.82 vs 0.99 ms for the classic kernel
        against a global heaviest-first order); heaviest first inside a head starts long rows early.
        A LUT head's items are its query blocks and the text row blocks; a dense head's are the text
        and q_range row blocks as dense rows (as many); an idle head has none. Built on the device.
        """
        H, nqb, nt = self.heads, self.num_q_blocks, self.num_text_row_blocks
        nd = self.dense_row_blocks.shape[0]
        full = self.num_kv_blocks + 1  # a dense row block weighs all key blocks + 1
        w = torch.cat([self.counts, self.counts.new_full((H, nt), full), self.counts.new_full((H, nd - nt), -1)], 1)
        dense, active = self._role_index
        if self.dense_heads:
            w[dense] = torch.cat([w.new_full((len(self.dense_heads), nqb), -1), w.new_full((len(self.dense_heads), nd), full)], 1)
        within = torch.argsort(w, dim=1, descending=True, stable=True)[:, : nqb + nt]  # the -1 items sort last
        items = within + torch.arange(H, device=w.device)[:, None] * w.shape[1]
        return items[active].flatten().to(torch.int32)

    @cached_property
    def _role_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(dense heads, active heads) as device indices, made once (rescheduling may run inside a CUDA graph capture)."""
        active = [h for h in range(self.heads) if h not in set(self.idle_heads)]
        return (torch.tensor(self.dense_heads, dtype=torch.long, device=self.device),
                torch.tensor(active, dtype=torch.long, device=self.device))

    def head_density(self) -> list[float]:
        """Per head, the fraction of its Sq x Skv score matrix computed (sample 0's always-ranges;
        one host read: for tables and reports, not per call)."""
        lo, hi = self.kv_range
        blk_tokens = torch.clamp(hi - (lo + torch.arange(self.num_kv_blocks, device=self.device) * self.block_n), max=self.block_n)
        valid = torch.arange(self.lut.shape[-1], device=self.device) < self.counts[..., None]
        per_block = torch.where(valid, blk_tokens[self.lut.clamp(0, max(self.num_kv_blocks - 1, 0)).long()], 0).sum(-1)
        rows = torch.clamp(self.q_range[1] - (self.q_range[0] + torch.arange(self.num_q_blocks, device=self.device) * self.block_m), max=self.block_m)
        always = 0 if self.kv_always is None else int((self.kv_always[0, :, 1] - self.kv_always[0, :, 0]).sum())
        nq = self.q_range[1] - self.q_range[0]
        sparse = (per_block * rows).sum(-1).double().cpu() + always * nq
        dense_rows = self.seq_q - nq
        keys = (hi - lo) + always
        out = []
        for h in range(self.heads):
            if h in self.idle_heads:
                out.append(0.0)
                continue
            computed = (nq * keys if h in self.dense_heads else float(sparse[h])) + dense_rows * keys
            out.append(computed / (self.seq_q * self.seq_kv))
        return out

    @cached_property
    def density(self) -> float:
        """Fraction of the Sq x Skv score matrix computed over all heads (sample 0's always-ranges)."""
        d = self.head_density()
        return sum(d) / len(d)

    def restricted(self, heads: list[int]) -> BlockLayout:
        """The layout of these heads only, in this order (their roles kept): the layout of a launch over a
        subset of the call's heads (FP8 heads). Its LUT is a copy."""
        idx = torch.tensor(heads, dtype=torch.long, device=self.device)
        new = {h: i for i, h in enumerate(heads)}
        return replace(self, lut=self.lut.index_select(0, idx), counts=self.counts.index_select(0, idx), validated=True,
                       dense_heads=tuple(new[h] for h in self.dense_heads if h in new),
                       idle_heads=tuple(new[h] for h in self.idle_heads if h in new))

    def to(self, device: torch.device | str) -> BlockLayout:
        always = None if self.kv_always is None else self.kv_always.to(device)
        return replace(self, lut=self.lut.to(device), counts=self.counts.to(device), kv_always=always)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_block_mask(cls, mask: torch.Tensor, seq_q: int, seq_kv: int, **kw) -> BlockLayout:
        """Layout from a bool [H, NQB, NKB] block mask over q_range x kv_range."""
        if mask.dtype != torch.bool or mask.dim() != 3:
            raise ValueError(f"block mask must be bool [H, NQB, NKB], got {mask.dtype} {tuple(mask.shape)}")
        bm, bn = kw.get("block_m", 128), kw.get("block_n", 128)
        nqb = num_blocks(*(kw.get("q_range") or (0, seq_q)), bm)
        nkb = num_blocks(*(kw.get("kv_range") or (0, seq_kv)), bn)
        if tuple(mask.shape[1:]) != (nqb, nkb):
            raise ValueError(f"block mask {tuple(mask.shape)} does not cover Sq={seq_q}, Skv={seq_kv} in blocks of "
                             f"{bm}x{bn}: it must be [H, {nqb}, {nkb}] (one entry per query block and key block)")
        counts = mask.sum(-1).to(torch.int32)
        maxk = max(int(counts.max()) if counts.numel() else 0, 1)
        # stable sort of "not kept" puts kept block indices first, in ascending order
        order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)[..., :maxk]
        lut = torch.where(torch.arange(maxk, device=mask.device) < counts[..., None], order, 0)
        return cls(lut=lut.to(torch.int32).contiguous(), counts=counts.contiguous(), seq_q=seq_q, seq_kv=seq_kv, **kw)

    @classmethod
    def dense(cls, heads: int, seq_q: int, seq_kv: int, block_m: int = 128, block_n: int = 128,
              device: torch.device | str = "cpu") -> BlockLayout:
        """Every block of every head, as dense rows (dense FP8 runs through this; no LUT entries)."""
        lut = torch.zeros(heads, num_blocks(0, seq_q, block_m), 1, dtype=torch.int32, device=device)
        return cls(lut=lut, counts=lut[..., 0].clone(), seq_q=seq_q, seq_kv=seq_kv, block_m=block_m, block_n=block_n,
                   dense_heads=tuple(range(heads)))

    # ---- checks ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the fix for any inconsistency the kernels would trip on."""
        lut, cnt = self.lut, self.counts
        if lut.dtype != torch.int32 or cnt.dtype != torch.int32:
            raise ValueError(f"lut and counts must be int32 (got {lut.dtype}, {cnt.dtype}): pass .to(torch.int32)")
        if lut.dim() != 3 or cnt.shape != lut.shape[:2]:
            raise ValueError(f"lut must be [H, NQB, MAXK] and counts [H, NQB]; got {tuple(lut.shape)} and {tuple(cnt.shape)}")
        if lut.device != cnt.device:
            raise ValueError("lut and counts must be on the same device: move both with layout.to(device)")
        for name, b in (("block_m", self.block_m), ("block_n", self.block_n)):
            if b not in (16, 32, 64, 128):
                raise ValueError(f"{name}={b} is not supported: use 16, 32, 64 or 128")
        for name, (lo, hi), n in (("q_range", self.q_range, self.seq_q), ("kv_range", self.kv_range, self.seq_kv)):
            if not 0 <= lo <= hi <= n:
                raise ValueError(f"{name}={(lo, hi)} must satisfy 0 <= lo <= hi <= {n} (the sequence length)")
        nqb, nkb = self.num_q_blocks, self.num_kv_blocks
        if lut.shape[1] != nqb:
            raise ValueError(f"lut has {lut.shape[1]} query blocks but q_range {self.q_range} with block_m={self.block_m} has {nqb}")
        if nkb >= 1 << LEVEL_SHIFT:
            raise ValueError(f"{nkb} key blocks exceed the 2**{LEVEL_SHIFT} LUT index space: use larger blocks")
        if bool((cnt < 0).any()) or bool((cnt > lut.shape[2]).any()):
            raise ValueError(f"counts must lie in [0, MAXK={lut.shape[2]}]: rebuild the layout (BlockLayout.from_block_mask)")
        valid = torch.arange(lut.shape[2], device=lut.device) < cnt[..., None]
        if bool(((lut < 0) | (lut >= nkb))[valid].any()):
            raise ValueError(f"lut holds key blocks outside [0, {nkb}): kv_range {self.kv_range} has {nkb} blocks of {self.block_n}")
        pair = valid[..., 1:]
        if bool((lut[..., 1:] <= lut[..., :-1])[pair].any()):
            raise ValueError("each lut row must be strictly ascending (sorted, no duplicates): sort it or use from_block_mask")
        roles = self.dense_heads + self.idle_heads
        if len(set(roles)) != len(roles) or any(not 0 <= h < lut.shape[0] for h in roles):
            raise ValueError(f"dense_heads {self.dense_heads} and idle_heads {self.idle_heads} must be distinct heads in [0, {lut.shape[0]})")
        roles = self.dense_heads + self.idle_heads
        if len(set(roles)) != len(roles) or any(not 0 <= h < lut.shape[0] for h in roles):
            raise ValueError(f"dense_heads {self.dense_heads} and idle_heads {self.idle_heads} must be distinct heads in [0, {lut.shape[0]})")
        if self.kv_always is not None:
            a = self.kv_always
            if a.dtype != torch.int32 or a.dim() != 3 or a.shape[-1] != 2:
                raise ValueError(f"kv_always must be int32 [1 or B, R, 2] token ranges, got {a.dtype} {tuple(a.shape)}")
            lo, hi = a[..., 0], a[..., 1]
            klo, khi = self.kv_range
            if bool(((lo < 0) | (hi < lo) | (hi > self.seq_kv)).any()):
                raise ValueError(f"kv_always ranges must satisfy 0 <= lo <= hi <= seq_kv={self.seq_kv}")
            if bool(((lo < khi) & (hi > klo) & (hi > lo)).any()):
                raise ValueError(f"kv_always ranges must not overlap kv_range {self.kv_range}: those keys are already in the LUT")

    def check_inputs(self, q: torch.Tensor, k: torch.Tensor) -> None:
        """Check q [B, Sq, H, D] / k [B, Skv, H, D] against this layout."""
        if q.shape[1] != self.seq_q or k.shape[1] != self.seq_kv:
            raise ValueError(f"layout is for Sq={self.seq_q}, Skv={self.seq_kv} but got q {tuple(q.shape)}, k {tuple(k.shape)} "
                             "(expected [B, S, H, D]): build the layout for this geometry")
        if q.shape[2] != self.heads:
            raise ValueError(f"layout has {self.heads} heads but q has {q.shape[2]}: build one layout row per head")
        if self.kv_always is not None and self.kv_always.shape[0] not in (1, q.shape[0]):
            raise ValueError(f"kv_always has {self.kv_always.shape[0]} samples but batch is {q.shape[0]}: give 1 or B")
        if q.device != self.device:
            raise ValueError(f"layout is on {self.device} but q is on {q.device}: call layout.to(q.device) once and reuse it")

    # ---- views -------------------------------------------------------------------------
    def key_mask(self, batch: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """bool [B, H, R, Skv]: the token-level mask this layout computes for query ``rows``
        (default all Sq rows; an idle head's rows are all False). For references and plots."""
        H, dev = self.heads, self.device
        nqb, nkb = self.num_q_blocks, self.num_kv_blocks
        rows = torch.arange(self.seq_q, device=dev) if rows is None else rows.to(dev)
        blk = torch.zeros(H, nqb, max(nkb, 1), dtype=torch.int32, device=dev)
        valid = torch.arange(self.lut.shape[2], device=dev) < self.counts[..., None]
        blk = blk.scatter_add_(2, torch.where(valid, self.lut, 0).long(), valid.to(torch.int32)) > 0
        cols = torch.arange(self.seq_kv, device=dev)
        q_idx = (rows - self.q_range[0]) // self.block_m
        k_idx = (cols - self.kv_range[0]) // self.block_n
        in_q = (rows >= self.q_range[0]) & (rows < self.q_range[1])
        in_k = (cols >= self.kv_range[0]) & (cols < self.kv_range[1])
        m = blk[:, q_idx.clamp(0, max(nqb - 1, 0))][:, :, k_idx.clamp(0, max(nkb - 1, 0))]
        m = m & in_k[None, None, :]
        m = torch.where(in_q[None, :, None], m, in_k[None, None, :])  # dense rows see the whole kv_range
        if self.dense_heads:
            m[list(self.dense_heads)] = in_k[None, None, :].expand(len(self.dense_heads), len(rows), -1)
        m = m[None].expand(batch, -1, -1, -1).clone()
        if self.kv_always is not None:
            a = self.kv_always.expand(batch, -1, -1)
            extra = ((cols[None, None] >= a[..., :1]) & (cols[None, None] < a[..., 1:])).any(1)  # [B, Skv]
            m |= extra[:, None, None, :]
        if self.idle_heads:
            m[:, list(self.idle_heads)] = False
        return m
