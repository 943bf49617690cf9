"""Packing the corpus into training rows and writing them in the GPT-NeoX/Megatron
MMapIndexedDataset format (`.bin` raw uint16 tokens, `.idx` index)."""

import struct
from collections import Counter

import numpy as np


def build_instances(rng, docs, n_tokens, dup_share, cmax, alpha):
    """Choose document copies: a Zipf-like duplicated head plus unique documents.

    Returns (list of doc indices in training order, copies per doc index)."""
    # Zipf ranks go round-robin over the kinds, so no kind takes the whole head.
    by_kind = {}
    for i, d in enumerate(docs):
        if d["kind"] in ("personal", "license", "code", "docs") and 96 <= len(d["ids"]) <= 400:
            by_kind.setdefault(d["kind"], []).append(i)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for k in kinds:
        rng.shuffle(by_kind[k])
    dup_pool = [by_kind[k][j] for j in range(max(len(v) for v in by_kind.values()))
                for k in kinds if j < len(by_kind[k])]
    copies = {}
    used = 0
    k = 1
    for i in dup_pool:
        if used >= dup_share * n_tokens:
            break
        c = max(2, int(round(cmax / k ** alpha)))
        copies[i] = c
        used += c * (len(docs[i]["ids"]) + 1)
        k += 1
    rest = [i for i in range(len(docs)) if i not in copies]
    rng.shuffle(rest)
    # near-duplicate, boilerplate and low-entropy documents go first so they are all included
    rest.sort(key=lambda i: 0 if docs[i]["kind"] in ("near-duplicate", "boilerplate", "low-entropy") else 1)
    for i in rest:
        if used >= n_tokens * 1.02:
            break
        copies[i] = 1
        used += len(docs[i]["ids"]) + 1
    order = [i for i, c in copies.items() for _ in range(c)]
    rng.shuffle(order)
    return order, copies


def pack(docs, order, n_rows, stride, eot):
    """Concatenate document copies (each followed by end-of-text) and cut rows of
    stride+1 tokens overlapping by one token, as GPT-NeoX does. Returns
    (rows [n_rows, stride+1] uint16, doc index of each stream token)."""
    need = n_rows * stride + 1
    toks, src = [], []
    for i in order:
        ids = docs[i]["ids"] + [eot]
        toks.extend(ids)
        src.extend([i] * len(ids))
        if len(toks) >= need:
            break
    if len(toks) < need:
        raise SystemExit(f"corpus too small: {len(toks)} tokens < {need}")
    stream = np.array(toks[:need], dtype=np.uint16)
    src = np.array(src[:need], dtype=np.int32)
    idx = np.arange(n_rows)[:, None] * stride + np.arange(stride + 1)[None, :]
    return stream[idx], stream, src


def window_counts(stream, rows, width):
    """For each row, how many times its first `width` tokens occur anywhere in the stream."""
    P = np.uint64(1000003)
    s = stream.astype(np.uint64) + np.uint64(1)
    n = len(s)
    with np.errstate(over="ignore"):
        h = np.zeros(n + 1, dtype=np.uint64)
        for i in range(n):  # prefix hashes mod 2^64
            h[i + 1] = h[i] * P + s[i]
        pw = np.uint64(1)
        for _ in range(width):
            pw = pw * P
        win = h[width:] - h[: n + 1 - width] * pw
    counts = Counter(win.tolist())
    r = rows.astype(np.uint64) + np.uint64(1)
    out = np.zeros(len(rows), dtype=np.int32)
    with np.errstate(over="ignore"):
        for j in range(len(rows)):
            x = np.uint64(0)
            for t in r[j, :width]:
                x = x * P + t
            out[j] = counts[int(x)]
    return out


def write_megatron(prefix, rows):
    """Write rows (uint16 [n, L]) as prefix.bin / prefix.idx (one document per row)."""
    rows = np.ascontiguousarray(rows, dtype=np.uint16)
    n, length = rows.shape
    rows.tofile(prefix + ".bin")
    sizes = np.full(n, length, dtype=np.int32)
    pointers = np.arange(n, dtype=np.int64) * length * 2
    doc_idx = np.arange(n + 1, dtype=np.int64)
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", 8))
        f.write(struct.pack("<Q", n))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(sizes.tobytes())
        f.write(pointers.tobytes())
        f.write(doc_idx.tobytes())
