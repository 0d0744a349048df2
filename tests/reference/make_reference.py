#!/usr/bin/env python3
"""Reference logits for the CPU forward of model/, computed by HuggingFace transformers.

Creates small random checkpoints of qwen3_moe and minimax_m2 with odd sizes (head counts that
are not powers of two, several key/value heads and one, partial rotary for minimax_m2, more
experts than top-k, a dense mlp_only layer and a sparse step for qwen3_moe, tied and untied
embeddings, one checkpoint sharded), saves them as bf16 with save_pretrained, loads them back
in fp32 (the same bf16 values, computed in fp32, eager attention) and writes for each:

    DIR/NAME/config.json, *.safetensors     the checkpoint as transformers saved it
    DIR/NAME/reference.json                 {"prompt": ids, "greedy": 16 ids,
                                             "logits": one row per position of prompt+greedy
                                             except the last}

Usage: make_reference.py OUT_DIR  (needs torch, transformers >= 5, safetensors; CPU is enough)
The C tests (tests/test_model.c) compare their logits with these and require the same tokens.
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

VOCAB = 293
PROMPT = [1, 17, 254, 3, 99, 42, 200]
N_GREEDY = 16

CASES = {
    # 6 query heads over 3 key/value heads; layer 1 is dense (mlp_only_layers); untied.
    "qwen3_moe_a": dict(
        model_type="qwen3_moe", vocab_size=VOCAB, hidden_size=56, intermediate_size=72,
        moe_intermediate_size=24, num_hidden_layers=3, num_attention_heads=6,
        num_key_value_heads=3, head_dim=16, num_experts=6, num_experts_per_tok=2,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[1], rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    # 3 query heads, one key/value head; every second layer sparse; tied; no renormalisation;
    # saved in shards.
    "qwen3_moe_b": dict(
        model_type="qwen3_moe", vocab_size=VOCAB, hidden_size=36, intermediate_size=40,
        moe_intermediate_size=20, num_hidden_layers=2, num_attention_heads=3,
        num_key_value_heads=1, head_dim=12, num_experts=5, num_experts_per_tok=3,
        norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[], rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # 6 query heads over 2 key/value heads, rotary over half of each head.
    "minimax_m2_a": dict(
        model_type="minimax_m2", vocab_size=VOCAB, hidden_size=48, intermediate_size=24,
        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, head_dim=16,
        num_local_experts=7, num_experts_per_tok=2, rotary_dim=8, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0,
                         "partial_rotary_factor": 0.5}),
    # 5 query heads, one key/value head, rotary over 6 of 12 dims.
    "minimax_m2_b": dict(
        model_type="minimax_m2", vocab_size=VOCAB, hidden_size=40, intermediate_size=20,
        num_hidden_layers=2, num_attention_heads=5, num_key_value_heads=1, head_dim=12,
        num_local_experts=4, num_experts_per_tok=3, rotary_dim=6, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "partial_rotary_factor": 0.5}),
}


def randomize(model, seed):
    """Weights large enough that logits spread and routing is decisive (no near-ties)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        for name, b in model.named_buffers():
            if "e_score_correction_bias" in name:
                b.copy_(0.3 * torch.randn(b.shape, generator=g))


def run_case(name, kw, out, log):
    kw = dict(kw)
    model_type = kw.pop("model_type")
    cfg = transformers.AutoConfig.for_model(model_type, **kw)
    cfg.bos_token_id = None
    cfg.eos_token_id = None
    cfg.pad_token_id = None
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    randomize(model, sum(map(ord, name)))
    model = model.to(torch.bfloat16)
    d = os.path.join(out, name)
    shard = "60KB" if name == "qwen3_moe_b" else "50GB"
    model.save_pretrained(d, max_shard_size=shard)
    del model

    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    log.write(f"== {name}: {type(m).__name__}\n{m.config}\n")
    for n, b in m.named_buffers():
        log.write(f"buffer {n} {tuple(b.shape)} {b.dtype}\n")
    ids = list(PROMPT)
    with torch.no_grad():
        for _ in range(N_GREEDY):
            logits = m(torch.tensor([ids])).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
        full = m(torch.tensor([ids[:-1]])).logits[0]
        gen = m.generate(torch.tensor([PROMPT]), do_sample=False, max_new_tokens=N_GREEDY,
                         min_new_tokens=N_GREEDY)
    cached = gen[0].tolist()[len(PROMPT):]
    log.write(f"greedy {ids[len(PROMPT):]}\ngenerate (cache) {cached}\n")
    if cached != ids[len(PROMPT):]:
        log.write("WARNING: cached generation differs\n")
    ref = {"prompt": PROMPT, "greedy": ids[len(PROMPT):],
           "logits": [[float(f"{v:.9g}") for v in row.tolist()] for row in full]}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_grad_enabled(False)
    with open(os.path.join(out, "log.txt"), "w") as log:
        log.write(f"torch {torch.__version__} transformers {transformers.__version__}\n")
        for name, kw in CASES.items():
            try:
                run_case(name, kw, out, log)
            except Exception as e:  # keep going: the log says what broke
                import traceback
                log.write(f"FAILED {name}: {e}\n{traceback.format_exc()}\n")
            log.flush()


if __name__ == "__main__":
    main()
