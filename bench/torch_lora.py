#!/usr/bin/env python3
"""torch_lora.py - the PyTorch side of Tailor's training benchmark (bench/train-bench.ts).

A self-contained plain-PyTorch LLaMA (RMSNorm, HF rotate-half RoPE, GQA attention, SwiGLU MLP, tied or
untied head) that loads a HF folder (config.json + model.safetensors, header parsed here: no
transformers / peft / safetensors packages), freezes the base weights, adds LoRA A/B on all seven
projections (q, k, v, o, gate, up, down), and times AdamW steps on the batches the benchmark wrote.

Usage: torch_lora.py --dir HF_DIR --data IDS.bin --n N --len L --batch B --steps S --threads K
          [--rank 8 --alpha 16 --lr 2e-4 --clip 1.0] [--device cpu|cuda] [--dtype f32|bf16]
          [--attention auto|sdpa|naive]
IDS.bin holds N x L little-endian int32 token ids (L = T + 1); batch k (k = 0 is the untimed warm-up)
is rows [k*B, (k+1)*B). Prints one JSON line on stdout.

--device cuda puts the base weights, the LoRA parameters, the optimizer state and the batches on the first
GPU, all in float32 (as Tailor's weights are), with TF32 matrix products turned OFF so that both sides do
fp32 arithmetic; the timed region is bracketed by torch.cuda.synchronize(), and the JSON adds peak_gpu_mb
(torch.cuda.max_memory_allocated) and peak_gpu_reserved_mb (max_memory_reserved). Exits 3 with a message
when CUDA is not available to this PyTorch.

--dtype bf16 is the usual PEFT recipe for a model loaded with torch_dtype=bfloat16: every base tensor
(embedding, projections, norms, head) in bf16, so the activations and the residual stream are bf16 too;
the LoRA A/B parameters and AdamW's state stay float32 (PEFT's autocast_adapter_dtype), the adapter path
casts its input to float32 and its output back; RMSNorm computes in float32 and casts back (as HF's
LlamaRMSNorm); the logits are cast to float32 for the loss. Training only (not with --importance).

--attention: "sdpa" is torch.nn.functional.scaled_dot_product_attention(is_causal=True) (PyTorch >= 2.0;
flash / memory-efficient kernels on a GPU, as HF's default "sdpa" attention), "naive" materialises the
T x T scores; "auto" (the default) takes sdpa when this torch has it. The JSON says which ran.

       torch_lora.py --importance --dir HF_DIR --data IDS.bin --n N --len L --threads K [--repeats 3]
One importance (full-gradient) pass, as LLM-Pruner's Taylor importance needs: the same model without
LoRA, requires_grad on every base weight, forward + backward of the mean next-token loss over all N
rows (one batch), then sum |w*g| over every weight. One untimed warm-up pass, then the best of
--repeats timed passes. Prints one JSON line {ms, ms_fwd_bwd, loss, peak_rss_mb, sum_abs_wg_total, ...}.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_safetensors(path, device="cpu"):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        n = 1
        for s in info["shape"]:
            n *= s
        t = torch.frombuffer(data, dtype=dt, count=n, offset=base + start).view(*info["shape"])
        t = t.float() if dt != torch.float32 else t
        out[name] = t.to(device) if device != "cpu" else t
    return out


class LoraLinear(nn.Module):
    """y = x W^T + scale * (x A^T) B^T; W frozen (a buffer-like plain tensor), A kaiming-uniform, B = 0."""

    def __init__(self, w, r, alpha):
        super().__init__()
        self.w = w  # not a Parameter: frozen
        self.r = r
        if r == 0:  # no LoRA (the importance pass): y = x W^T
            return
        out_f, in_f = w.shape
        # initialised on the CPU (the same draws whatever the device), then moved with the weight
        A = torch.empty(r, in_f)
        nn.init.kaiming_uniform_(A, a=math.sqrt(5))
        self.A = nn.Parameter(A.to(w.device))
        self.B = nn.Parameter(torch.zeros(out_f, r, device=w.device))
        self.scale = alpha / r

    def forward(self, x):
        y = F.linear(x, self.w)
        if self.r == 0:
            return y
        xa = x if x.dtype == self.A.dtype else x.to(self.A.dtype)  # bf16 model: the adapter runs in float32
        return y + (F.linear(F.linear(xa, self.A), self.B) * self.scale).to(y.dtype)


def rms_norm(x, w, eps):
    if x.dtype == torch.float32:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    # a bf16 model: in float32, cast back (HF's LlamaRMSNorm)
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, sd, i, cfg, r, alpha, sdpa):
        super().__init__()
        p = f"model.layers.{i}."
        self.sdpa = sdpa
        self.ln1 = sd[p + "input_layernorm.weight"]
        self.ln2 = sd[p + "post_attention_layernorm.weight"]
        self.q = LoraLinear(sd[p + "self_attn.q_proj.weight"], r, alpha)
        self.k = LoraLinear(sd[p + "self_attn.k_proj.weight"], r, alpha)
        self.v = LoraLinear(sd[p + "self_attn.v_proj.weight"], r, alpha)
        self.o = LoraLinear(sd[p + "self_attn.o_proj.weight"], r, alpha)
        self.gate = LoraLinear(sd[p + "mlp.gate_proj.weight"], r, alpha)
        self.up = LoraLinear(sd[p + "mlp.up_proj.weight"], r, alpha)
        self.down = LoraLinear(sd[p + "mlp.down_proj.weight"], r, alpha)
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads") or self.nh
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.nh
        self.eps = cfg.get("rms_norm_eps", 1e-5)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = rms_norm(x, self.ln1, self.eps)
        q = self.q(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.nkv != self.nh:
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd) + mask
            y = torch.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        x = x + self.o(y)
        h = rms_norm(x, self.ln2, self.eps)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, sd, cfg, r, alpha, sdpa=False):
        super().__init__()
        self.emb = sd["model.embed_tokens.weight"]
        self.head = sd.get("lm_head.weight", self.emb)
        self.norm = sd["model.norm.weight"]
        self.eps = cfg.get("rms_norm_eps", 1e-5)
        self.layers = nn.ModuleList([Layer(sd, i, cfg, r, alpha, sdpa) for i in range(cfg["num_hidden_layers"])])
        hd = self.layers[0].hd
        theta = cfg.get("rope_theta", 10000.0)
        dev = self.emb.device
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=dev) / hd))

    def forward(self, ids):
        B, T = ids.shape
        dev = ids.device
        x = F.embedding(ids, self.emb)
        t = torch.arange(T, dtype=torch.float32, device=dev)
        freqs = torch.outer(t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        # in the activations' dtype (a bf16 model rotates in bf16, as HF casts cos/sin to x's dtype)
        cos, sin = emb.cos()[None, None].to(x.dtype), emb.sin()[None, None].to(x.dtype)
        mask = torch.full((T, T), float("-inf"), device=dev, dtype=x.dtype).triu(1)
        for l in self.layers:
            x = l(x, cos, sin, mask)
        return F.linear(rms_norm(x, self.norm, self.eps), self.head).float()


def sync(a):
    """Waits for the GPU's queued work (timing brackets); nothing on the CPU."""
    if a.device == "cuda":
        torch.cuda.synchronize()


def device_fields(a):
    """What the JSON line says about the device: its name and PyTorch's peak GPU memory (MB)."""
    common = {"attention": "sdpa" if a.sdpa else "naive", "dtype": a.dtype}
    if a.device != "cuda":
        return {"device": "cpu", **common}
    return {
        **common,
        "device": "cuda",
        "device_name": torch.cuda.get_device_name(0),
        "cuda": torch.version.cuda,
        "tf32": torch.backends.cuda.matmul.allow_tf32,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
        "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved() / 2**20,
    }


def read_ids(a):
    with open(a.data, "rb") as f:
        ids = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).view(a.n, a.len).long()
    return ids.to(a.device) if a.device != "cpu" else ids


def importance(a):
    """One full-gradient pass over all base weights (no LoRA); see the module docstring."""
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    sd = load_safetensors(os.path.join(a.dir, "model.safetensors"), a.device)
    model = Llama(sd, cfg, 0, 1.0, a.sdpa)
    # every base weight once (a tied head is the embedding tensor itself: its gradient sums both uses)
    weights = list({id(t): t for t in sd.values()}.values())
    for t in weights:
        t.requires_grad_(True)
    ids = read_ids(a)
    inp, tgt = ids[:, :-1], ids[:, 1:]

    def one():
        for t in weights:
            t.grad = None
        sync(a)
        t0 = time.perf_counter()
        logits = model(inp)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        loss.backward()
        sync(a)
        t1 = time.perf_counter()
        with torch.no_grad():
            s = sum(float((t * t.grad).abs().sum(dtype=torch.float64)) for t in weights)
        t2 = time.perf_counter()
        return (t2 - t0) * 1000.0, (t1 - t0) * 1000.0, float(loss.detach()), s

    one()  # warm-up (untimed)
    runs = [one() for _ in range(a.repeats)]
    best = min(runs, key=lambda r: r[0])
    print(
        json.dumps(
            {
                "engine": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "ms": best[0],
                "ms_fwd_bwd": best[1],
                "all_ms": [r[0] for r in runs],
                "loss": best[2],
                "sum_abs_wg_total": best[3],
                "params": sum(t.numel() for t in weights),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                **device_fields(a),
            }
        )
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--len", type=int, required=True)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--importance", action="store_true", help="time one full-gradient pass instead of LoRA steps")
    ap.add_argument("--repeats", type=int, default=3, help="--importance: timed passes (best taken)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the model, batches and LoRA live")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32", help="the base model's dtype (LoRA and AdamW stay float32)")
    ap.add_argument("--attention", choices=["auto", "sdpa", "naive"], default="auto", help="sdpa: F.scaled_dot_product_attention")
    a = ap.parse_args()
    have_sdpa = hasattr(F, "scaled_dot_product_attention")
    if a.attention == "sdpa" and not have_sdpa:
        sys.exit(f"--attention sdpa: PyTorch {torch.__version__} has no scaled_dot_product_attention (it came in 2.0)")
    a.sdpa = a.attention == "sdpa" or (a.attention == "auto" and have_sdpa)
    if a.dtype == "bf16" and a.importance:
        sys.exit("--dtype bf16 is for LoRA training; the importance pass is float32")

    if a.device == "cuda":
        if not torch.cuda.is_available():
            print(f"PyTorch {torch.__version__} cannot use CUDA here (torch.cuda.is_available() is False; "
                  f"built for CUDA {torch.version.cuda})", file=sys.stderr)
            sys.exit(3)
        # fp32 arithmetic on both sides: no TF32 tensor-core shortcut for float32 matrix products
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.cuda.manual_seed_all(0)

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    if a.importance:
        return importance(a)
    if a.batch < 1 or a.steps < 1:
        sys.exit("--batch and --steps are required for LoRA training")
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    sd = load_safetensors(os.path.join(a.dir, "model.safetensors"), a.device)
    if a.dtype == "bf16":
        sd = {k: t.to(torch.bfloat16) for k, t in sd.items()}
    model = Llama(sd, cfg, a.rank, a.alpha, a.sdpa)
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    ids = read_ids(a)
    if a.n < (a.steps + 1) * a.batch:
        sys.exit("not enough rows for the steps")

    def step(k):
        rows = ids[k * a.batch : (k + 1) * a.batch]
        inp, tgt = rows[:, :-1], rows[:, 1:]
        logits = model(inp)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        return float(loss.detach()), inp.numel()

    loss0, _ = step(0)  # warm-up (untimed); its loss is the base model's (B = 0)
    losses = []
    tokens = 0
    sync(a)
    t0 = time.perf_counter()
    for k in range(1, a.steps + 1):
        l, n = step(k)  # float(loss) at the end of a step waits for it on the GPU too, as Tailor's step does
        losses.append(l)
        tokens += n
    sync(a)
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "tokens_per_sec": tokens / dt,
                "seconds": dt,
                "steps": a.steps,
                "tokens": tokens,
                "loss0": loss0,
                "losses": losses,
                "lora_params": sum(p.numel() for p in params),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                **device_fields(a),
            }
        )
    )


if __name__ == "__main__":
    main()
