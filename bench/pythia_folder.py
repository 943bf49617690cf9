"""Saves bench/neox.ts's random GPT-NeoX as Pythia's step branches ship it: `pytorch_model.bin`.

Reads `weights.json` (name, dims as generated, transposed) and `weights.f16` (the float16 values,
back to back) from the folder given, and writes `pytorch_model.bin` with torch.save: a float16
state dict in Hugging Face's layout, with the legacy buffers older Pythia files carry
(attention.bias, attention.masked_bias, attention.rotary_emb.inv_freq). Run by writeNeoxFolder.
"""

import collections
import json
import os
import sys

import numpy as np
import torch

folder = sys.argv[1]
with open(os.path.join(folder, "config.json")) as f:
    config = json.load(f)
with open(os.path.join(folder, "weights.json")) as f:
    manifest = json.load(f)
raw = np.fromfile(os.path.join(folder, "weights.f16"), dtype=np.float16)
state = collections.OrderedDict()
at = 0
for w in manifest:
    n = int(np.prod(w["dims"]))
    t = torch.from_numpy(raw[at : at + n].copy()).reshape(w["dims"])
    at += n
    state[w["name"]] = t.t().contiguous() if w["transposed"] else t
assert at == raw.size, (at, raw.size)
d, heads = config["hidden_size"], config["num_attention_heads"]
rot = int(d // heads * config["rotary_pct"])
n_pos = config["max_position_embeddings"]
for i in range(config["num_hidden_layers"]):
    p = f"gpt_neox.layers.{i}.attention."
    state[p + "bias"] = torch.tril(torch.ones(n_pos, n_pos, dtype=torch.bool)).view(1, 1, n_pos, n_pos)
    state[p + "masked_bias"] = torch.tensor(-1e9)
    base = config["rotary_emb_base"]
    state[p + "rotary_emb.inv_freq"] = 1.0 / (base ** (torch.arange(0, rot, 2).float() / rot))
torch.save(state, os.path.join(folder, "pytorch_model.bin"))
