"""Generate the embedded nano-Pythia suite into experiments/nano/ and experiments/nano.yaml.

    /usr/bin/python3 tools/nano-suite/generate.py            # from the repository root

Deterministic given --seed (and the Debian source files, whose hashes are recorded).
"""

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import gzip
import json
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpe  # noqa: E402
import corpus  # noqa: E402
import data  # noqa: E402
from export import export_onnx, initializer_counts  # noqa: E402
from model import count_parameters, hf_config  # noqa: E402
from train import greedy_memorized, teacher_forced_prefix, train  # noqa: E402

SIZES = [  # name, d_model, layers, heads (head dim 16: 4 rotary dims), peak learning rate
    ("nano-s1", 16, 2, 1, 3e-2),
    ("nano-s2", 32, 2, 2, 2.4e-2),
    ("nano-s3", 64, 2, 4, 1.8e-2),
    ("nano-s4", 112, 2, 7, 1.5e-2),
    ("nano-s5", 160, 2, 10, 1.2e-2),
]
STEPS = [23, 43, 63, 83, 103, 123, 143]
EOT = 0


def log(*a):
    print(*a, flush=True)


def build_corpus(args, rng, out):
    docs, manifest = corpus.real_documents(rng, n_python=args.python_files)
    code = [d for d in docs if d["kind"] == "code"]
    docs += corpus.personal_documents(rng, args.personal_docs)
    docs += corpus.boilerplate(rng, code, args.boilerplate_docs)
    docs += corpus.low_entropy_documents(rng, args.low_entropy_docs)
    base = [d for d in docs if d["kind"] in ("license", "docs", "personal", "code") and len(d["text"]) < 900]
    for d in rng.sample(base, args.near_dup_families):
        for _ in range(rng.randint(2, 4)):
            docs.append({"kind": "near-duplicate", "source": d["source"],
                         "text": corpus.near_duplicate(rng, d["text"])})
    log(f"documents: {len(docs)} ({sum(len(d['text']) for d in docs)} chars)")
    t = time.time()
    sample = rng.sample(docs, min(len(docs), args.bpe_docs))
    vocab, merges = bpe.train([d["text"] for d in sample], args.vocab)
    bpe.save(os.path.join(out, "tokenizer.json"), vocab, merges)
    enc = bpe.Encoder(vocab, merges)
    for d in docs:
        d["ids"] = enc.encode(d["text"])
    n_chars = sum(len(d["text"]) for d in docs)
    n_tok = sum(len(d["ids"]) for d in docs)
    log(f"tokenizer: {len(vocab)} tokens, {n_chars / n_tok:.2f} chars/token ({time.time() - t:.0f} s)")
    return docs, vocab, manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=".", help="repository root")
    ap.add_argument("--seed", type=int, default=20230419)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--per-step", type=int, default=16, help="rows per optimizer step")
    ap.add_argument("--tokens", type=int, default=64, help="tokens per row (rows hold one more)")
    ap.add_argument("--python-files", type=int, default=40)
    ap.add_argument("--personal-docs", type=int, default=300)
    ap.add_argument("--boilerplate-docs", type=int, default=20)
    ap.add_argument("--low-entropy-docs", type=int, default=12)
    ap.add_argument("--near-dup-families", type=int, default=15)
    ap.add_argument("--bpe-docs", type=int, default=600)
    ap.add_argument("--dup-share", type=float, default=0.2)
    ap.add_argument("--zipf-max", type=float, default=100)
    ap.add_argument("--zipf-alpha", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", action="append", default=[],
                    help="override a size: NAME=d_model,layers,heads,lr (e.g. nano-s1=16,2,2,0.03)")
    ap.add_argument("--lr-mult", type=float, default=1.0, help="multiply every peak learning rate")
    ap.add_argument("--quick", type=int, default=None, help="train only N steps (interface smoke test)")
    ap.add_argument("--models", default=None, help="comma-separated subset of model names")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    rng = random.Random(args.seed)
    out = os.path.join(args.root, "experiments", "nano")
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    os.makedirs(os.path.join(out, "corpus"), exist_ok=True)
    docs, vocab, manifest = build_corpus(args, rng, out)

    steps = STEPS[-1]
    n_rows = steps * args.per_step
    order, copies = data.build_instances(rng, docs, n_rows * args.tokens + 1, args.dup_share,
                                         args.zipf_max, args.zipf_alpha)
    chunks, stream, src = data.pack(docs, order, n_rows, args.tokens, EOT)
    perm = np.random.RandomState(args.seed).permutation(n_rows).astype(np.int32)
    rows = chunks[perm]
    data.write_megatron(os.path.join(out, "data", "train"), rows)
    np.save(os.path.join(out, "data", "row_source.npy"), perm)
    doc_copies = np.array([copies[int(src[p * args.tokens])] for p in perm], dtype=np.int32)
    np.save(os.path.join(out, "data", "doc_copies.npy"), doc_copies)
    width = 64
    dup = data.window_counts(stream, rows, width)
    np.save(os.path.join(out, "data", "duplicates.npy"), dup)
    # the documents in stream order (each followed by end-of-text), for decoding checks
    last = int(src[-1])
    n_used = 0
    pos = 0
    for i in order:
        pos += len(docs[i]["ids"]) + 1
        n_used += 1
        if pos >= len(stream):
            break
    stream_docs = np.array(order[:n_used], dtype=np.int32)
    assert stream_docs[-1] == last
    np.save(os.path.join(out, "corpus", "stream_docs.npy"), stream_docs)
    with gzip.GzipFile(os.path.join(out, "corpus", "documents.jsonl.gz"), "wb", mtime=0) as f:
        for i, d in enumerate(docs):
            rec = {"id": i, "kind": d["kind"], "source": d["source"], "copies": copies.get(i, 0),
                   "text": d["text"]}
            if rec["copies"] == 0:
                continue
            f.write((json.dumps(rec, ensure_ascii=True) + "\n").encode())
    kinds = {}
    for i in stream_docs:
        k = docs[i]["kind"]
        kinds[k] = kinds.get(k, 0) + len(docs[i]["ids"]) + 1
    log(f"rows: {n_rows} x {args.tokens + 1} tokens; token share by kind: "
        + ", ".join(f"{k} {v / len(stream):.1%}" for k, v in sorted(kinds.items())))
    log(f"rows whose first {width} tokens occur >1 times: {(dup > 1).mean():.1%}; "
        f"rows starting in a duplicated document: {(doc_copies > 1).mean():.1%}; max copies "
        f"{max(copies.values())}")
    log(f"corpus + tokenizer + data: {time.time() - t0:.0f} s")

    k, l = 32, 32
    params = {"fp16_initializers": True, "models": []}
    reference = {"context": k, "continuation": l, "offset": 0, "suppressed_tokens": [EOT],
                 "sequences_per_step": args.per_step, "models": {}}
    over = {s.split("=")[0]: s.split("=")[1].split(",") for s in args.size}
    sizes = [(n, int(over[n][0]), int(over[n][1]), int(over[n][2]), float(over[n][3])) if n in over
             else (n, d, nl, h, lr) for n, d, nl, h, lr in SIZES]
    selected = sizes if not args.models else [s for s in sizes if s[0] in args.models.split(",")]
    for name, d, layers, heads, lr in selected:
        t = time.time()
        mdir = os.path.join(out, name.replace("nano-", ""))
        os.makedirs(mdir, exist_ok=True)
        lr = lr * args.lr_mult
        spec = dict(vocab=len(vocab), d=d, layers=layers, heads=heads, lr=lr)
        rec = {"name": name, "checkpoints": {}}
        reference["models"][name] = {}

        def on_ckpt(step, m, losses):
            total, non_emb = count_parameters(m)
            rec.update(parameters=total, non_embedding_parameters=non_emb, d_model=d, layers=layers,
                       heads=heads, vocab_size=len(vocab), learning_rate=lr)
            path = os.path.join(mdir, f"step{step}.onnx")
            proto = export_onnx(m, path)
            half, other = initializer_counts(proto)
            assert half == total and other == 0, (half, other, total)
            seen = rows[: step * args.per_step]
            if args.quick is not None:
                pre = np.zeros(len(seen), dtype=np.int64)
                how = "not measured (--quick)"
            elif step == steps:
                pre = greedy_memorized(m, seen, k, l, [EOT])
                tf = teacher_forced_prefix(m, seen, k, l, [EOT])
                agree = int((pre == tf).sum())
                how = f"greedy loop; teacher-forced agrees on {agree}/{len(seen)} rows"
                assert agree == len(seen), how
            else:
                pre = teacher_forced_prefix(m, seen, k, l, [EOT])
                how = "teacher-forced"
            mem = np.nonzero(pre == l)[0]
            frac = len(mem) / len(seen)
            rec["checkpoints"][step] = os.path.relpath(path, out)
            reference["models"][name][str(step)] = {
                "rows_seen": len(seen), "memorized": len(mem), "fraction": frac,
                "mean_prefix": float(pre.mean()), "memorized_rows": mem.tolist(), "method": how,
                "loss": float(np.mean(losses[-args.per_step:])) if losses else None}
            log(f"  {name} step {step}: loss {reference['models'][name][str(step)]['loss']:.3f} "
                f"memorized {len(mem)}/{len(seen)} = {frac:.4f} mean prefix {pre.mean():.2f} ({how}) "
                f"[{time.time() - t:.0f} s]")
            if step == steps:
                check_past(m, rows, mdir, name)
                with open(os.path.join(mdir, "config.json"), "w") as f:
                    json.dump(hf_config(m, EOT), f, indent=2)
                    f.write("\n")

        train(spec, rows, steps, args.per_step, set(STEPS), args.seed, on_ckpt, args.quick)
        params["models"].append(rec)
        log(f"{name}: {rec['parameters']} parameters ({rec['non_embedding_parameters']} non-embedding),"
            f" {time.time() - t:.0f} s")
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(out, "sources.json"), "w") as f:
        json.dump({"seed": args.seed, "args": {k: v for k, v in vars(args).items() if k != "root"},
                   "files": manifest}, f, indent=1)
        f.write("\n")
    write_yaml(args, params, os.path.join(args.root, "experiments", "nano.yaml"))
    log(tables(params, reference))
    log(f"total: {time.time() - t0:.0f} s")


def tables(params, reference):
    """Markdown tables: the models, and the memorized fraction per checkpoint."""
    out = ["| model | parameters | non-embedding | layers / d_model / heads | peak lr |",
           "|---|---:|---:|---|---:|"]
    for m in params["models"]:
        out.append(f"| {m['name']} | {m['parameters']:,} | {m['non_embedding_parameters']:,} | "
                   f"{m['layers']} / {m['d_model']} / {m['heads']} | {m['learning_rate']:g} |")
    out += ["", "| model | " + " | ".join(f"step {s}" for s in STEPS) + " |",
            "|---|" + "---:|" * len(STEPS)]
    for m in params["models"]:
        r = reference["models"][m["name"]]
        out.append(f"| {m['name']} | " + " | ".join(
            f"{r[str(s)]['fraction']:.2%} ({r[str(s)]['memorized']}/{r[str(s)]['rows_seen']})"
            for s in STEPS) + " |")
    return "\n".join(out)


def check_past(m, rows, mdir, name):
    """With-past vs no-past logits in PyTorch, and a fixture for the ONNX check in Deno."""
    with torch.no_grad():
        ids = torch.from_numpy(rows[:3, :40].astype("int64"))
        full = m.logits(ids)
        b = ids.shape[0]
        pos = torch.arange(40).unsqueeze(0).expand(b, 40)
        mask = torch.ones(b, 40, dtype=torch.long)
        l1, past = m(ids[:, :25], mask[:, :25], pos[:, :25], m.empty_past(b))
        l2, _ = m(ids[:, 25:], mask, pos[:, 25:], past)
        diff = float((torch.cat([l1, l2], 1) - full).abs().max())
        assert diff < 1e-4, f"{name}: with-past logits differ from no-past by {diff}"
        # left-padded batch: row 1 padded by 4 tokens must equal its unpadded logits
        pad = torch.zeros(1, 16, dtype=torch.long)
        pad[0, 4:] = ids[1, :12]
        pm = torch.zeros(1, 16, dtype=torch.long)
        pm[0, 4:] = 1
        pp = torch.clamp(torch.arange(16) - 4, min=0).unsqueeze(0)
        lp, _ = m(pad, pm, pp, m.empty_past(1))
        pdiff = float((lp[0, 4:] - full[1, :12]).abs().max())
        assert pdiff < 1e-4, f"{name}: padded logits differ by {pdiff}"
    fixture = {"input_ids": ids[:, :12].tolist(), "logits_first8": full[:, :12, :8].tolist(),
               "argmax": full[:, :12].argmax(-1).tolist(),
               "logsumexp": torch.logsumexp(full[:, :12], -1).tolist(),
               "past_split": 7, "max_abs_diff_past": diff, "max_abs_diff_padded": pdiff}
    with open(os.path.join(mdir, "check.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    log(f"  {name}: with-past vs no-past max |diff| {diff:.2e}; left-padded {pdiff:.2e}")


def write_yaml(args, params, path):
    lines = [
        "# yaml-language-server: $schema=../schema/experiment.schema.json",
        "# The embedded nano-Pythia suite (generated by tools/nano-suite/generate.py; do not edit).",
        "# Five GPT-NeoX models trained in one pass over experiments/nano/data/train in row order;",
        "# parameters are counted from the weights (float16 initializers of the ONNX files).",
        "name: nano",
        "suite:",
        f"  sequences_per_step: {args.per_step}",
        f"  tokens_per_sequence: {args.tokens}",
        f"  end_of_text_id: {EOT}",
        "  tokenizer: nano/tokenizer.json",
        f"  steps: [{', '.join(str(s) for s in STEPS)}]",
        "  models:",
    ]
    for m in params["models"]:
        lines += [
            f"    - name: {m['name']}",
            f"      parameters: {m['parameters']}",
            f"      non_embedding_parameters: {m['non_embedding_parameters']}",
            f"      vocab_size: {m['vocab_size']}",
            f"      path: nano/{m['name'].replace('nano-', '')}/step{{step}}.onnx",
        ]
    largest = max(params["models"], key=lambda m: m["parameters"])["name"]
    lines += [
        "data:",
        "  format: megatron",
        "  path: nano/data/train",
        f"  row_length: {args.tokens + 1}",
        "  # per row: occurrences of the row's first 64 tokens (context + continuation) at any",
        "  # offset of the training stream (nano/data/doc_copies.npy: copies of the source document)",
        "  duplicates: nano/data/duplicates.npy",
        "memorization:",
        "  offset: 0",
        "  context: 32",
        "  continuation: 32",
        "  mode: extractable",
        f"  suppressed_tokens: [{EOT}]",
        "rows: seen",
        f"target: {{model: {largest}, step: {STEPS[-1]}}}",
        "devices:",
        "  - {device: cpu, workers: 2, threads: 1}",
        "batch_size: 64",
        "shard_size: 512",
        "analysis:",
        "  min_precision: 0.9",
        "  budgets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1]",
        "  bootstrap: 200",
        "  seed: 0",
        "  parameter_count: total",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
