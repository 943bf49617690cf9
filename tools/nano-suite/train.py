"""One-pass training over the rows in order (Pythia recipe, scaled down) and the
reference greedy memorization measurement."""

import math

import torch

from model import GPTNeoX


def lr_at(step, total, lr, warmup):
    """Linear warmup, then cosine decay to 10% (Pythia's schedule)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def rounded(model):
    """A copy of the model whose weights are rounded to float16 (what is exported)."""
    m = GPTNeoX(**model.cfg)
    m.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return m.eval()


def train(spec, rows, steps, per_step, ckpt_steps, seed, on_checkpoint, train_steps=None):
    """Train one model over rows[0 : steps*per_step] in order, one optimizer step per
    `per_step` rows; calls on_checkpoint(step, fp16-rounded model) at ckpt_steps."""
    torch.manual_seed(seed)
    model = GPTNeoX(spec["vocab"], spec["d"], spec["layers"], spec["heads"])
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": other, "weight_decay": 0.0}],
                            lr=spec["lr"], betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, round(0.01 * steps))
    data = torch.from_numpy(rows.astype("int64"))
    losses = []
    for step in range(steps):
        if train_steps is None or step < train_steps:
            batch = data[step * per_step: (step + 1) * per_step]
            x, y = batch[:, :-1], batch[:, 1:]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, spec["lr"], warmup)
            model.train()
            logits = model.logits(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss))
        if step + 1 in ckpt_steps:
            on_checkpoint(step + 1, rounded(model), losses)
    return model


@torch.no_grad()
def greedy_memorized(model, rows, context, continuation, suppressed, batch=256):
    """Greedy generation with the KV cache: per row, the length of the exact matched
    prefix of the continuation (argmax, ties to the lowest id, suppressed ids never chosen)."""
    out = []
    for b0 in range(0, len(rows), batch):
        r = torch.from_numpy(rows[b0: b0 + batch, : context + continuation].astype("int64"))
        n = r.shape[0]
        ids = r[:, :context]
        mask = torch.ones(n, context, dtype=torch.long)
        pos = torch.arange(context).unsqueeze(0).expand(n, context)
        logits, past = model(ids, mask, pos, model.empty_past(n))
        gen = []
        for j in range(continuation):
            last = logits[:, -1, :].clone()
            last[:, suppressed] = -float("inf")
            nxt = last.argmax(dim=-1)  # first maximal index = lowest id on ties
            gen.append(nxt)
            if j + 1 == continuation:
                break
            t = context + j
            mask = torch.ones(n, t + 1, dtype=torch.long)
            logits, past = model(nxt[:, None], mask, torch.full((n, 1), t, dtype=torch.long), past)
        gen = torch.stack(gen, dim=1)
        eq = gen == r[:, context:]
        prefix = torch.where(eq.all(dim=1), torch.tensor(continuation),
                             (~eq).int().argmax(dim=1))
        out.append(prefix)
    return torch.cat(out).numpy()


@torch.no_grad()
def teacher_forced_prefix(model, rows, context, continuation, suppressed, batch=256):
    """The same matched-prefix lengths from one teacher-forced pass (exactness lemma)."""
    out = []
    k, l = context, continuation
    for b0 in range(0, len(rows), batch):
        r = torch.from_numpy(rows[b0: b0 + batch, : k + l].astype("int64"))
        logits = model.logits(r[:, : k + l - 1])[:, k - 1:, :]
        logits[..., suppressed] = -float("inf")
        eq = logits.argmax(dim=-1) == r[:, k:]
        prefix = torch.where(eq.all(dim=1), torch.tensor(l), (~eq).int().argmax(dim=1))
        out.append(prefix)
    return torch.cat(out).numpy()
