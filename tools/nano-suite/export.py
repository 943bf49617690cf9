"""ONNX export with the interface of a Hugging Face Optimum `text-generation-with-past`
GPT-NeoX export: inputs input_ids, attention_mask, position_ids (int64 [batch, seq]),
past_key_values.{i}.key/value (float32 [batch, heads, past, head_dim]); outputs logits
[batch, seq, vocab], present.{i}.key/value. Parameters are stored as float16
initializers (named as the PyTorch parameters) followed by a Cast to float32.
"""

import io

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto


class Wrapper(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *flat_past):
        n = self.model.cfg["layers"]
        past = [(flat_past[2 * i], flat_past[2 * i + 1]) for i in range(n)]
        logits, presents = self.model(input_ids, attention_mask, position_ids, past)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


def io_names(layers):
    ins = ["input_ids", "attention_mask", "position_ids"]
    outs = ["logits"]
    for i in range(layers):
        ins += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outs += [f"present.{i}.key", f"present.{i}.value"]
    return ins, outs


def export_onnx(model, path):
    """Export `model` (float32 weights already rounded to fp16) to `path`."""
    c = model.cfg
    n, h, hd = c["layers"], c["heads"], c["d"] // c["heads"]
    b, s, p = 2, 3, 2
    ids = torch.zeros(b, s, dtype=torch.long)
    mask = torch.ones(b, s + p, dtype=torch.long)
    pos = torch.arange(p, p + s).unsqueeze(0).expand(b, s).contiguous()
    past = []
    for _ in range(n):
        past += [torch.zeros(b, h, p, hd), torch.zeros(b, h, p, hd)]
    ins, outs = io_names(n)
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(n):
        for kind in ("key", "value"):
            dyn[f"past_key_values.{i}.{kind}"] = {0: "batch_size", 2: "past_sequence_length"}
            dyn[f"present.{i}.{kind}"] = {0: "batch_size", 2: "past_sequence_length + sequence_length"}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Wrapper(model).train(), (ids, mask, pos, *past), buf, input_names=ins,
                          output_names=outs, dynamic_axes=dyn, opset_version=17,
                          do_constant_folding=False, training=torch.onnx.TrainingMode.TRAINING)
    proto = onnx.load_from_string(buf.getvalue())
    params = {"model." + k: v for k, v in model.state_dict().items()}
    to_fp16(proto, params)
    proto.producer_name = "nano-suite"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return proto


def to_fp16(proto, params):
    """Store each parameter initializer as float16 named as the parameter, Cast to float32."""
    g = proto.graph
    found = set()
    casts = []
    renames = {}
    for init in g.initializer:
        if init.name not in params:
            continue
        arr = numpy_helper.to_array(init)
        name = init.name[len("model."):]
        half = numpy_helper.from_array(arr.astype(np.float16), name)
        init.CopyFrom(half)
        renames["model." + name] = name + ".f32"
        casts.append(helper.make_node("Cast", [name], [name + ".f32"], to=TensorProto.FLOAT,
                                      name="Cast_" + name))
        found.add("model." + name)
    missing = set(params) - found
    if missing:
        raise SystemExit(f"parameters not exported as initializers: {sorted(missing)}")
    for node in g.node:
        for i, x in enumerate(node.input):
            if x in renames:
                node.input[i] = renames[x]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)


def initializer_counts(proto):
    """(float16 parameter elements, other initializer elements) of an ONNX model."""
    half = other = 0
    for init in proto.graph.initializer:
        n = int(np.prod(init.dims)) if len(init.dims) else 1
        if init.data_type == TensorProto.FLOAT16:
            half += n
        else:
            other += n
    return half, other
