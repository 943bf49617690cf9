"""GPT-NeoX (Pythia's architecture) in plain PyTorch, numerically as Hugging Face's
GPTNeoXForCausalLM: rotary embeddings on `rotary_pct` of each head's dims
(rotate-half form, base 10000), parallel attention + MLP residual, LayerNorm
(eps 1e-5), exact GELU, untied output embedding without bias, fused QKV laid out
per head as HF does. Linear weights are stored [in, out] so the ONNX export keeps
every parameter as one named initializer (the parameter count is their sum).
"""

import math

import torch
from torch import nn


class Linear(nn.Module):
    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        y = torch.matmul(x, self.weight)
        return y + self.bias if self.bias is not None else y


class Layer(nn.Module):
    def __init__(self, d, heads, rotary_pct):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.rot = int(self.hd * rotary_pct)
        self.input_layernorm = nn.LayerNorm(d, eps=1e-5)
        self.post_attention_layernorm = nn.LayerNorm(d, eps=1e-5)
        self.query_key_value = Linear(d, 3 * d)
        self.dense = Linear(d, d)
        self.dense_h_to_4h = Linear(d, 4 * d)
        self.dense_4h_to_h = Linear(4 * d, d)
        inv = 1.0 / (10000 ** (torch.arange(0, self.rot, 2).float() / self.rot))
        self.inv_freq = inv.tolist()  # plain floats: becomes a graph constant, not an initializer

    def rotary(self, x, cos, sin):
        r = self.rot
        xr, xp = x[..., :r], x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
        rotated = torch.cat((-x2, x1), dim=-1)
        return torch.cat((xr * cos + rotated * sin, xp), dim=-1)

    def forward(self, x, cos, sin, bias, past_k, past_v):
        b, s, d = x.shape
        h = self.input_layernorm(x)
        qkv = self.query_key_value(h).view(b, s, self.heads, 3 * self.hd).permute(0, 2, 1, 3)
        q, k, v = qkv[..., : self.hd], qkv[..., self.hd: 2 * self.hd], qkv[..., 2 * self.hd:]
        q, k = self.rotary(q, cos, sin), self.rotary(k, cos, sin)
        k = torch.cat((past_k, k), dim=2)
        v = torch.cat((past_v, v), dim=2)
        scores = torch.matmul(q * (1.0 / math.sqrt(self.hd)), k.transpose(-1, -2)) + bias
        attn = torch.softmax(scores, dim=-1)
        o = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(b, s, d)
        a = self.dense(o)
        m = self.dense_4h_to_h(torch.nn.functional.gelu(self.dense_h_to_4h(self.post_attention_layernorm(x))))
        return x + a + m, k, v


class GPTNeoX(nn.Module):
    def __init__(self, vocab, d, layers, heads, rotary_pct=0.25):
        super().__init__()
        self.cfg = dict(vocab=vocab, d=d, layers=layers, heads=heads, rotary_pct=rotary_pct)
        self.embed_in = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(Layer(d, heads, rotary_pct) for _ in range(layers))
        self.final_layer_norm = nn.LayerNorm(d, eps=1e-5)
        self.embed_out = Linear(d, vocab, bias=False)
        self.init_weights()

    def init_weights(self):
        # Pythia: small_init (std = sqrt(2 / (5 d))) and wang_init for output projections.
        d, n = self.cfg["d"], self.cfg["layers"]
        std = math.sqrt(2 / (5 * d))
        for name, p in self.named_parameters():
            if "layernorm" in name or "layer_norm" in name:
                continue
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.endswith("dense.weight") or name.endswith("dense_4h_to_h.weight"):
                nn.init.normal_(p, std=2 / n / math.sqrt(d))
            else:
                nn.init.normal_(p, std=std)

    def forward(self, input_ids, attention_mask, position_ids, past):
        """past: list of (key, value) [b, heads, past, head_dim]. Returns logits, presents."""
        x = self.embed_in(input_ids)
        s = input_ids.shape[1]
        p = past[0][0].shape[2]
        # Causal + padding bias exactly as HF: key j visible to query i iff j <= p + i
        # and attention_mask[j] == 1; masked entries get finfo(float32).min.
        q_idx = torch.arange(s).unsqueeze(1) + p
        k_idx = torch.arange(s + p).unsqueeze(0)
        allowed = (k_idx <= q_idx).unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] > 0)
        minv = torch.finfo(torch.float32).min
        bias = torch.where(allowed, torch.zeros((), dtype=torch.float32), torch.full((), minv))
        presents = []
        for i, layer in enumerate(self.layers):
            inv = torch.tensor(layer.inv_freq)
            freqs = position_ids.float().unsqueeze(-1) * inv  # [b, s, rot/2]
            emb = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)  # [b, 1, s, rot]
            x, k, v = layer(x, emb.cos(), emb.sin(), bias, past[i][0], past[i][1])
            presents.append((k, v))
        logits = self.embed_out(self.final_layer_norm(x))
        return logits, presents

    def empty_past(self, batch):
        c = self.cfg
        hd = c["d"] // c["heads"]
        return [(torch.zeros(batch, c["heads"], 0, hd), torch.zeros(batch, c["heads"], 0, hd))
                for _ in range(c["layers"])]

    def logits(self, ids):
        """Full-sequence logits without cache (all positions visible, positions 0..s-1)."""
        b, s = ids.shape
        mask = torch.ones(b, s, dtype=torch.long)
        pos = torch.arange(s).unsqueeze(0).expand(b, s)
        return self.forward(ids, mask, pos, self.empty_past(b))[0]


def count_parameters(model):
    total = sum(p.numel() for p in model.parameters())
    emb = model.embed_in.weight.numel() + model.embed_out.weight.numel()
    return total, total - emb


def hf_config(model, eot=0):
    c = model.cfg
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": c["vocab"],
        "hidden_size": c["d"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "intermediate_size": 4 * c["d"],
        "hidden_act": "gelu",
        "rotary_pct": c["rotary_pct"],
        "rotary_emb_base": 10000,
        "max_position_embeddings": 2048,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-5,
        "use_parallel_residual": True,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "float16",
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "classifier_dropout": 0.1,
        "rope_scaling": None,
    }
