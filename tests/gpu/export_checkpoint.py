"""Writes a committed reference checkpoint (tests/data/model/NAME) as one flat file that the GPU
checks read without a JSON library: config numbers, every weight as bf16 in the forward's
order, then reference.json's prompt, greedy tokens and transformers' logits.

    python3 tests/gpu/export_checkpoint.py tests/data/model/qwen3_moe_a OUT.bin

Layout (little-endian): b"CRUCKPT1"; 15 int32 (arch 1 qwen3_moe / 2 minimax_m2, vocab, hidden,
layers, heads, kv_heads, head_dim, inter, moe_inter, experts, top_k, rotary_dim, norm_topk_prob,
tied, routing bias); 2 float64 (rms_eps, rope_theta); layers int32 (1: MoE); the tensors;
int32 n_prompt, int32 n_greedy, the ids; int32 rows; rows x vocab float32.
Only the standard library: json and struct.
"""
import json
import struct
import sys


def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "BF16":
            raise SystemExit(f"{path}: {k} is {v['dtype']}, only BF16 is exported")
        b, e = v["data_offsets"]
        out[k] = raw[base + b:base + e]
    return out


def main(src, dst):
    cfg = json.load(open(f"{src}/config.json"))
    ref = json.load(open(f"{src}/reference.json"))
    try:
        files = sorted(set(json.load(open(f"{src}/model.safetensors.index.json"))["weight_map"].values()))
    except FileNotFoundError:
        files = ["model.safetensors"]
    t = {}
    for f in files:
        t.update(tensors(f"{src}/{f}"))
    mm = cfg["model_type"] == "minimax_m2"
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    rp = cfg.get("rope_parameters") or {}
    factor = rp.get("partial_rotary_factor", cfg.get("partial_rotary_factor"))
    rot = int(hd * factor) if factor else cfg.get("rotary_dim") or hd
    theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    L = cfg["num_hidden_layers"]
    experts = cfg.get("num_local_experts") or cfg.get("num_experts")
    if mm:
        moe = [1] * L
    else:
        step = cfg.get("decoder_sparse_step", 1)
        only = cfg.get("mlp_only_layers") or []
        moe = [int(l not in only and experts > 0 and (l + 1) % step == 0) for l in range(L)]
    tied = int(bool(cfg.get("tie_word_embeddings")))
    bias = int(mm and "model.layers.0.block_sparse_moe.e_score_correction_bias" in t)
    out = open(dst, "wb")
    out.write(b"CRUCKPT1")
    out.write(struct.pack("<15i", 2 if mm else 1, cfg["vocab_size"], cfg["hidden_size"], L,
                          cfg["num_attention_heads"], cfg["num_key_value_heads"], hd,
                          cfg.get("intermediate_size", 0),
                          cfg.get("moe_intermediate_size", cfg.get("intermediate_size", 0)),
                          experts, cfg["num_experts_per_tok"], rot,
                          int(bool(cfg.get("norm_topk_prob", False))), tied, bias))
    out.write(struct.pack("<2d", cfg["rms_norm_eps"], theta))
    out.write(struct.pack(f"<{L}i", *moe))
    out.write(t["model.embed_tokens.weight"])
    out.write(t["model.norm.weight"])
    out.write(t["model.embed_tokens.weight"] if tied else t["lm_head.weight"])
    for l in range(L):
        p = f"model.layers.{l}."
        for n in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                  "self_attn.o_proj", "self_attn.q_norm", "self_attn.k_norm",
                  "post_attention_layernorm"):
            out.write(t[p + n + ".weight"])
        if not moe[l]:
            for n in ("gate_proj", "up_proj", "down_proj"):
                out.write(t[p + "mlp." + n + ".weight"])
            continue
        blk = p + ("block_sparse_moe." if mm else "mlp.")
        out.write(t[blk + "gate.weight"])
        if bias:
            out.write(t[blk + "e_score_correction_bias"])
        for e in range(experts):
            names = ("w1", "w3", "w2") if mm else ("gate_proj", "up_proj", "down_proj")
            for n in names:
                out.write(t[f"{blk}experts.{e}.{n}.weight"])
    ids = ref["prompt"] + ref["greedy"]
    out.write(struct.pack("<2i", len(ref["prompt"]), len(ref["greedy"])))
    out.write(struct.pack(f"<{len(ids)}i", *ids))
    out.write(struct.pack("<i", len(ref["logits"])))
    for row in ref["logits"]:
        out.write(struct.pack(f"<{len(row)}f", *row))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
