"""Writes small Hugging Face model folders (tests/fixtures/hf/) and their reference scores.

Each folder is what `huggingface-cli download` leaves for a real checkpoint, in miniature:
`config.json` plus weights written by PyTorch itself (`torch.save` zip archives) or as
safetensors (written here in a few lines: header JSON + raw bytes, as the format defines):

- neox-bin-f16:        GPT-NeoX, float16 `pytorch_model.bin` (as Pythia's step branches ship it),
                       with the legacy buffers (attention.bias, masked_bias, rotary_emb.inv_freq);
                       the tensors are views of one storage (storage offsets exercised)
- neox-f32-safetensors GPT-NeoX with sequential residuals, float32 `model.safetensors`
- neox-f16-sharded:    GPT-NeoX, float16, two safetensors shards + model.safetensors.index.json
- llama-bf16:          Llama (grouped-query attention, tied embedding, llama3 rope_scaling),
                       bfloat16 `model.safetensors`
- olmo2-f32-safetensors OLMo 2 (QK-norm over the whole q and k projections, norms after attention
                       and the MLP, grouped-query attention, untied output), float32
                       `model.safetensors`
- gpt2-f32-safetensors GPT-2 as openai-community/gpt2 ships it: float32 `model.safetensors`, the base
                       model's names without `transformer.`, the `attn.bias`/`attn.masked_bias`
                       buffers, no `lm_head.weight` (tied)
- gpt2-f16-bin:        GPT-2 as GPT2LMHeadModel's state dict: float16 `pytorch_model.bin`,
                       `transformer.` names, `lm_head.weight` saved as the tied embedding's storage,
                       an explicit `n_inner`, `gelu_pytorch_tanh`

`reference.json` in each folder holds rows (context + continuation tokens) and the scores of a
plain reference forward written below (float32 from the stored weights; greedy = argmax with
token 0 suppressed, ties to the lowest id, no cache): free-running matches, matched prefix,
teacher-forced matches and the continuation's mean NLL. Run: /usr/bin/python3 tools/hf-fixtures/generate.py
[FOLDER ...] (all folders without arguments; each folder has its own seeds, so writing some
leaves the others as they are).
"""

import collections
import json
import math
import os
import struct
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "hf")
K, L = 8, 8
SUPPRESSED = [0]
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


# ---------------------------------------------------------------- weights


def neox_config(residual_parallel=True, rotary_pct=0.25):
    return {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": 128,
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 128, "rotary_pct": rotary_pct, "rotary_emb_base": 10000,
        "max_position_embeddings": 32, "use_parallel_residual": residual_parallel,
        "layer_norm_eps": 1e-5, "hidden_act": "gelu", "tie_word_embeddings": False,
        "bos_token_id": 0, "eos_token_id": 0,
    }


def llama_config():
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128,
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 64, "hidden_act": "silu",
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8},
        "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": 0,
    }


def olmo2_config():
    return {
        "architectures": ["Olmo2ForCausalLM"], "model_type": "olmo2", "vocab_size": 128,
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "hidden_act": "silu",
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
        "rope_scaling": None, "attention_bias": False, "attention_dropout": 0.0,
        "tie_word_embeddings": False, "bos_token_id": None, "eos_token_id": 0, "pad_token_id": 1,
    }


def olmo2_shapes(c):
    d, v, i = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    h, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = d // h
    s = {"model.embed_tokens.weight": [v, d]}
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        s[p + "self_attn.q_proj.weight"] = [h * hd, d]
        s[p + "self_attn.k_proj.weight"] = [kv * hd, d]
        s[p + "self_attn.v_proj.weight"] = [kv * hd, d]
        s[p + "self_attn.o_proj.weight"] = [d, h * hd]
        s[p + "self_attn.q_norm.weight"] = [h * hd]
        s[p + "self_attn.k_norm.weight"] = [kv * hd]
        s[p + "mlp.gate_proj.weight"] = [i, d]
        s[p + "mlp.up_proj.weight"] = [i, d]
        s[p + "mlp.down_proj.weight"] = [d, i]
        s[p + "post_attention_layernorm.weight"] = [d]
        s[p + "post_feedforward_layernorm.weight"] = [d]
    s["model.norm.weight"] = [d]
    s["lm_head.weight"] = [v, d]
    return s


def gpt2_config(**changes):
    c = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 128,
        "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None, "n_positions": 32,
        "n_ctx": 32, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True,
        "bos_token_id": 0, "eos_token_id": 0,
    }
    c.update(changes)
    return c


def gpt2_shapes(c, prefix):
    d, v = c["n_embd"], c["vocab_size"]
    i = c["n_inner"] or 4 * d
    s = {prefix + "wte.weight": [v, d], prefix + "wpe.weight": [c["n_positions"], d]}
    for n in range(c["n_layer"]):
        p = f"{prefix}h.{n}."
        for ln in ("ln_1", "ln_2"):
            s[p + ln + ".weight"] = [d]
            s[p + ln + ".bias"] = [d]
        # Conv1D: weights stored [in, out].
        s[p + "attn.c_attn.weight"] = [d, 3 * d]
        s[p + "attn.c_attn.bias"] = [3 * d]
        s[p + "attn.c_proj.weight"] = [d, d]
        s[p + "attn.c_proj.bias"] = [d]
        s[p + "mlp.c_fc.weight"] = [d, i]
        s[p + "mlp.c_fc.bias"] = [i]
        s[p + "mlp.c_proj.weight"] = [i, d]
        s[p + "mlp.c_proj.bias"] = [d]
    s[prefix + "ln_f.weight"] = [d]
    s[prefix + "ln_f.bias"] = [d]
    return s


def gpt2_init(shapes, gen):
    """As init, for GPT-2's names: Conv1D weights [in, out], LayerNorm scales ln_*.weight."""
    out = collections.OrderedDict()
    for name, shape in shapes.items():
        if name.endswith("wte.weight"):
            out[name] = torch.randn(shape, generator=gen)
        elif name.endswith("wpe.weight"):
            out[name] = 0.5 * torch.randn(shape, generator=gen)
        elif len(shape) == 2:
            out[name] = torch.randn(shape, generator=gen) * (1.5 / math.sqrt(shape[0]))
        elif ".ln_" in name or name.startswith("ln_"):
            out[name] = (1.0 + 0.2 * torch.randn(shape, generator=gen)) if name.endswith("weight") \
                else 0.1 * torch.randn(shape, generator=gen)
        else:
            out[name] = 0.1 * torch.randn(shape, generator=gen)
    return out


def neox_shapes(c):
    d, v, i = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    s = {"gpt_neox.embed_in.weight": [v, d]}
    for n in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{n}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            s[p + ln + ".weight"] = [d]
            s[p + ln + ".bias"] = [d]
        s[p + "attention.query_key_value.weight"] = [3 * d, d]
        s[p + "attention.query_key_value.bias"] = [3 * d]
        s[p + "attention.dense.weight"] = [d, d]
        s[p + "attention.dense.bias"] = [d]
        s[p + "mlp.dense_h_to_4h.weight"] = [i, d]
        s[p + "mlp.dense_h_to_4h.bias"] = [i]
        s[p + "mlp.dense_4h_to_h.weight"] = [d, i]
        s[p + "mlp.dense_4h_to_h.bias"] = [d]
    s["gpt_neox.final_layer_norm.weight"] = [d]
    s["gpt_neox.final_layer_norm.bias"] = [d]
    s["embed_out.weight"] = [v, d]
    return s


def llama_shapes(c):
    d, v, i = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    h, kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    s = {"model.embed_tokens.weight": [v, d]}
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        s[p + "self_attn.q_proj.weight"] = [h * hd, d]
        s[p + "self_attn.k_proj.weight"] = [kv * hd, d]
        s[p + "self_attn.v_proj.weight"] = [kv * hd, d]
        s[p + "self_attn.o_proj.weight"] = [d, h * hd]
        s[p + "mlp.gate_proj.weight"] = [i, d]
        s[p + "mlp.up_proj.weight"] = [i, d]
        s[p + "mlp.down_proj.weight"] = [d, i]
        s[p + "input_layernorm.weight"] = [d]
        s[p + "post_attention_layernorm.weight"] = [d]
    s["model.norm.weight"] = [d]
    return s


def init(shapes, gen):
    """Weights with enough spread that greedy choices are clear (no float near-ties)."""
    out = collections.OrderedDict()
    for name, shape in shapes.items():
        if len(shape) == 2:
            std = 1.0 if "embed" in name else 1.5 / math.sqrt(shape[1])
            out[name] = torch.randn(shape, generator=gen) * std
        elif name.endswith("norm.weight"):
            out[name] = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        else:
            out[name] = 0.1 * torch.randn(shape, generator=gen)
    return out


# ---------------------------------------------------------------- reference forward (float32)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, pos, inv, rot):
    freqs = pos[:, None].float() * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


def attention(q, k, v, hd):
    s = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def neox_forward(c, w, ids):
    d, h = c["hidden_size"], c["num_attention_heads"]
    hd = d // h
    rot = int(hd * c["rotary_pct"])
    inv = 1.0 / (c["rotary_emb_base"] ** (torch.arange(0, rot, 2, dtype=torch.int64).float() / rot))
    s = ids.shape[0]
    pos = torch.arange(s)
    x = w["gpt_neox.embed_in.weight"][ids]
    lin = lambda x, n: x @ w[n + ".weight"].T + w[n + ".bias"]
    ln = lambda x, n: torch.nn.functional.layer_norm(x, (d,), w[n + ".weight"], w[n + ".bias"], c["layer_norm_eps"])
    for n in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{n}."
        qkv = lin(ln(x, p + "input_layernorm"), p + "attention.query_key_value").view(s, h, 3 * hd).transpose(0, 1)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q, k = rope(q, pos, inv, rot), rope(k, pos, inv, rot)
        a = lin(attention(q, k, v, hd).transpose(0, 1).reshape(s, d), p + "attention.dense")
        mlp = lambda y: lin(torch.nn.functional.gelu(lin(ln(y, p + "post_attention_layernorm"), p + "mlp.dense_h_to_4h")), p + "mlp.dense_4h_to_h")
        if c["use_parallel_residual"]:
            x = x + a + mlp(x)
        else:
            x = x + a
            x = x + mlp(x)
    x = ln(x, "gpt_neox.final_layer_norm")
    return x @ w["embed_out.weight"].T


def llama_inv_freq(c):
    hd = c["head_dim"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    r = c.get("rope_scaling")
    if r:  # transformers' _compute_llama3_parameters
        factor, low, high, old = r["factor"], r["low_freq_factor"], r["high_freq_factor"], r["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def llama_forward(c, w, ids):
    d, h, kv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    inv = llama_inv_freq(c)
    s = ids.shape[0]
    pos = torch.arange(s)
    emb = w["model.embed_tokens.weight"]
    x = emb[ids]
    lin = lambda x, n: x @ w[n + ".weight"].T

    def rms(x, n):
        var = x.pow(2).mean(-1, keepdim=True)
        return w[n + ".weight"] * (x * torch.rsqrt(var + c["rms_norm_eps"]))

    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        y = rms(x, p + "input_layernorm")
        q = lin(y, p + "self_attn.q_proj").view(s, h, hd).transpose(0, 1)
        k = lin(y, p + "self_attn.k_proj").view(s, kv, hd).transpose(0, 1)
        v = lin(y, p + "self_attn.v_proj").view(s, kv, hd).transpose(0, 1)
        q, k = rope(q, pos, inv, hd), rope(k, pos, inv, hd)
        k = k.repeat_interleave(h // kv, dim=0)
        v = v.repeat_interleave(h // kv, dim=0)
        x = x + lin(attention(q, k, v, hd).transpose(0, 1).reshape(s, h * hd), p + "self_attn.o_proj")
        y = rms(x, p + "post_attention_layernorm")
        x = x + lin(torch.nn.functional.silu(lin(y, p + "mlp.gate_proj")) * lin(y, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, "model.norm")
    return x @ (w["lm_head.weight"] if "lm_head.weight" in w else emb).T


def olmo2_forward(c, w, ids):
    """Olmo2ForCausalLM's forward: QK-norm, norms after attention and the MLP."""
    d, h, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = d // h
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    s = ids.shape[0]
    pos = torch.arange(s)
    x = w["model.embed_tokens.weight"][ids]
    lin = lambda x, n: x @ w[n + ".weight"].T

    def rms(x, n):
        var = x.pow(2).mean(-1, keepdim=True)
        return w[n + ".weight"] * (x * torch.rsqrt(var + c["rms_norm_eps"]))

    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        q = rms(lin(x, p + "self_attn.q_proj"), p + "self_attn.q_norm").view(s, h, hd).transpose(0, 1)
        k = rms(lin(x, p + "self_attn.k_proj"), p + "self_attn.k_norm").view(s, kv, hd).transpose(0, 1)
        v = lin(x, p + "self_attn.v_proj").view(s, kv, hd).transpose(0, 1)
        q, k = rope(q, pos, inv, hd), rope(k, pos, inv, hd)
        k = k.repeat_interleave(h // kv, dim=0)
        v = v.repeat_interleave(h // kv, dim=0)
        a = lin(attention(q, k, v, hd).transpose(0, 1).reshape(s, h * hd), p + "self_attn.o_proj")
        x = x + rms(a, p + "post_attention_layernorm")
        m = lin(torch.nn.functional.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = x + rms(m, p + "post_feedforward_layernorm")
    return rms(x, "model.norm") @ w["lm_head.weight"].T


def gelu_new(x):
    """transformers' NewGELUActivation (gelu_new; gelu_pytorch_tanh is the same function)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(prefix):
    """GPT2LMHeadModel's forward (tied output), from weights named with `prefix`."""

    def forward(c, w, ids):
        d, h = c["n_embd"], c["n_head"]
        hd = d // h
        s = ids.shape[0]
        g = lambda n: w[prefix + n]
        x = g("wte.weight")[ids] + g("wpe.weight")[torch.arange(s)]
        conv = lambda x, n: x @ g(n + ".weight") + g(n + ".bias")
        ln = lambda x, n: torch.nn.functional.layer_norm(x, (d,), g(n + ".weight"), g(n + ".bias"), c["layer_norm_epsilon"])
        for n in range(c["n_layer"]):
            p = f"h.{n}."
            q, k, v = conv(ln(x, p + "ln_1"), p + "attn.c_attn").split(d, dim=-1)
            q, k, v = (t.view(s, h, hd).transpose(0, 1) for t in (q, k, v))
            x = x + conv(attention(q, k, v, hd).transpose(0, 1).reshape(s, d), p + "attn.c_proj")
            x = x + conv(gelu_new(conv(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
        return ln(x, "ln_f") @ g("wte.weight").T

    return forward


# ---------------------------------------------------------------- reference scores


def greedy(logits):
    """Argmax with the suppressed ids excluded, ties to the lowest id; and the top-2 margin."""
    x = logits.clone()
    x[SUPPRESSED] = float("-inf")
    best = x.max()
    top = int((x == best).nonzero()[0])
    x[top] = float("-inf")
    return top, float(best - x.max())


def score_rows(forward, rows):
    out, margin = [], float("inf")
    for row in rows:
        ctx, cont = row[:K], row[K:]
        ids = list(ctx)
        gen = []
        for _ in range(L):
            t, m = greedy(forward(torch.tensor(ids))[-1])
            margin = min(margin, m)
            gen.append(t)
            ids.append(t)
        matches = sum(int(g == t) for g, t in zip(gen, cont))
        prefix = next((j for j in range(L) if gen[j] != cont[j]), L)
        logits = forward(torch.tensor(row[:K + L - 1]))[K - 1:].double()
        logp = torch.log_softmax(logits, dim=-1)
        nll = float(-logp[torch.arange(L), torch.tensor(cont)].mean())
        tf = [greedy(logits[j].float())[0] for j in range(L)]
        out.append({"tokens": row, "matches": matches, "prefix": prefix,
                    "tf_matches": sum(int(a == b) for a, b in zip(tf, cont)), "nll": nll,
                    "generated": gen})
    return out, margin


def make_rows(forward, vocab, gen):
    """Random rows; rows continuing with the model's own greedy output (memorized); one of
    those with continuation token 3 changed (prefix 3)."""
    rand = lambda n: [int(x) for x in torch.randint(1, vocab, (n,), generator=gen)]
    rows = [rand(K + L) for _ in range(4)]
    for _ in range(4):
        ids = rand(K)
        for _ in range(L):
            ids.append(greedy(forward(torch.tensor(ids))[-1])[0])
        rows.append(ids)
    changed = list(rows[-1])
    changed[K + 3] = changed[K + 3] % (vocab - 1) + 1
    rows.append(changed)
    return rows


# ---------------------------------------------------------------- writers


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def folder(name, config):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return d


def finish(d, config, stored, forward, seed):
    """Reference rows and scores from the stored weights, computed in float32."""
    w = {k: v.float() for k, v in stored.items()}
    fwd = lambda ids: forward(config, w, ids)
    with torch.no_grad():
        rows = make_rows(fwd, config["vocab_size"], torch.Generator().manual_seed(seed + 1))
        scores, margin = score_rows(fwd, rows)
    assert margin > 1e-3, f"{d}: near-tie on a greedy path (margin {margin}); change the seed"
    ref = {"context": K, "continuation": L, "suppressed": SUPPRESSED, "min_greedy_margin": margin,
           "rows": scores}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    memorized = sum(r["prefix"] == L for r in scores)
    print(f"{os.path.basename(d)}: {len(scores)} rows, {memorized} memorized, min margin {margin:.4f}")


def main(only):
    want = lambda name: not only or name in only
    torch.manual_seed(0)
    if want("neox-bin-f16"):
        neox_bin_f16()
    if want("neox-f32-safetensors"):
        neox_f32_safetensors()
    if want("neox-f16-sharded"):
        neox_f16_sharded()
    if want("llama-bf16"):
        llama_bf16()
    if want("olmo2-f32-safetensors"):
        olmo2_f32_safetensors()
    if want("gpt2-f32-safetensors"):
        gpt2_f32_safetensors()
    if want("gpt2-f16-bin"):
        gpt2_f16_bin()


def neox_bin_f16():
    """GPT-NeoX, float16 torch.save, legacy buffers, tensors as views of one storage."""
    c = neox_config()
    d = folder("neox-bin-f16", c)
    w = {k: v.half() for k, v in init(neox_shapes(c), torch.Generator().manual_seed(1)).items()}
    flat = torch.cat([t.reshape(-1) for t in w.values()])
    sd, at = collections.OrderedDict(), 0
    for n, t in w.items():
        sd[n] = flat[at:at + t.numel()].view(t.shape)
        at += t.numel()
        if n.endswith("attention.query_key_value.bias"):
            p = n[: -len("query_key_value.bias")]
            mp = c["max_position_embeddings"]
            sd[p + "bias"] = torch.tril(torch.ones(mp, mp, dtype=torch.bool)).view(1, 1, mp, mp)
            sd[p + "masked_bias"] = torch.tensor(-1e9)
            sd[p + "rotary_emb.inv_freq"] = torch.ones(2)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    finish(d, c, w, neox_forward, 1)


def neox_f32_safetensors():
    """GPT-NeoX with sequential residuals, float32 safetensors."""
    c = neox_config(residual_parallel=False, rotary_pct=0.5)
    d = folder("neox-f32-safetensors", c)
    w = init(neox_shapes(c), torch.Generator().manual_seed(2))
    write_safetensors(os.path.join(d, "model.safetensors"), w)
    finish(d, c, w, neox_forward, 2)


def neox_f16_sharded():
    """GPT-NeoX, float16, two safetensors shards and their index."""
    c = neox_config()
    d = folder("neox-f16-sharded", c)
    w = {k: v.half() for k, v in init(neox_shapes(c), torch.Generator().manual_seed(3)).items()}
    names = list(w)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(d, file), {n: w[n] for n in part})
        weight_map.update({n: file for n in part})
    total = sum(len(tensor_bytes(t)) for t in w.values())
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    finish(d, c, w, neox_forward, 3)


def llama_bf16():
    """Llama: grouped-query attention, tied embedding, llama3 rope scaling, bfloat16."""
    c = llama_config()
    d = folder("llama-bf16", c)
    w = {k: v.bfloat16() for k, v in init(llama_shapes(c), torch.Generator().manual_seed(4)).items()}
    write_safetensors(os.path.join(d, "model.safetensors"), w)
    finish(d, c, w, llama_forward, 4)


def olmo2_f32_safetensors():
    """OLMo 2: QK-norm, norms after attention and the MLP, grouped-query attention, float32."""
    c = olmo2_config()
    d = folder("olmo2-f32-safetensors", c)
    w = init(olmo2_shapes(c), torch.Generator().manual_seed(7))
    write_safetensors(os.path.join(d, "model.safetensors"), w)
    finish(d, c, w, olmo2_forward, 7)


def gpt2_f32_safetensors():
    """GPT-2 as openai-community/gpt2 ships it: the base model's names, its mask buffers."""
    c = gpt2_config()
    d = folder("gpt2-f32-safetensors", c)
    w = gpt2_init(gpt2_shapes(c, ""), torch.Generator().manual_seed(5))
    stored = collections.OrderedDict()
    mp = c["n_positions"]
    for n, t in w.items():
        stored[n] = t
        if n.endswith("attn.c_proj.bias"):
            p = n[: -len("c_proj.bias")]
            stored[p + "bias"] = torch.tril(torch.ones(mp, mp)).view(1, 1, mp, mp)
            stored[p + "masked_bias"] = torch.tensor(-1e4)
    write_safetensors(os.path.join(d, "model.safetensors"), stored)
    finish(d, c, w, gpt2_forward(""), 5)


def gpt2_f16_bin():
    """GPT-2 as GPT2LMHeadModel's state dict: float16 torch.save, lm_head tied to wte's storage."""
    c = gpt2_config(n_inner=48, activation_function="gelu_pytorch_tanh")
    d = folder("gpt2-f16-bin", c)
    w = {k: v.half() for k, v in gpt2_init(gpt2_shapes(c, "transformer."), torch.Generator().manual_seed(6)).items()}
    sd = collections.OrderedDict(w)
    sd["lm_head.weight"] = w["transformer.wte.weight"]
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    finish(d, c, w, gpt2_forward("transformer."), 6)


if __name__ == "__main__":
    main(set(sys.argv[1:]))
