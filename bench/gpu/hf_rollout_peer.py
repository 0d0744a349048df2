"""The transformers peer of bench-rollout: `generate` batched over the same kind of prompts on
the same card. Qwen3MoeForCausalLM with Qwen3-30B-A3B's shapes and random bf16 weights, B
prompts of 2048 tokens (groups of 8 share one, as in the rollout), 128 new tokens each, sampled
(temperature 1, no early stop), sdpa attention. One turn only: generate has no notion of
episodes or of reusing a cache across calls, so this is its best case (no observations, no
re-prefill of earlier turns). Only 2 and 4 layers are built (48 would not fit beside the
cache); the 48-layer time is extrapolated linearly, t48 = t4 + (t4 - t2) / 2 * 44.

    python3 bench/gpu/hf_rollout_peer.py [BATCH...]
"""
import sys
import time

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

PROMPT, GROUP, NEW = 2048, 8, 128


def run(layers, batch):
    cfg = Qwen3MoeConfig(vocab_size=151936, hidden_size=2048, num_hidden_layers=layers,
                         num_attention_heads=32, num_key_value_heads=4, head_dim=128,
                         moe_intermediate_size=768, intermediate_size=6144, num_experts=128,
                         num_experts_per_tok=8, norm_topk_prob=True,
                         max_position_embeddings=PROMPT + NEW + 16, attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = Qwen3MoeForCausalLM(cfg).to(torch.bfloat16).eval()
    groups = torch.randint(0, 151936, ((batch + GROUP - 1) // GROUP, PROMPT), device="cuda")
    ids = groups.repeat_interleave(GROUP, dim=0)[:batch]
    mask = torch.ones_like(ids)
    kw = dict(attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=True,
              temperature=1.0, top_k=0, top_p=1.0, pad_token_id=0)
    with torch.no_grad():
        # warm-up at the full shape: kernels chosen, allocator grown, caches made
        m.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = m.generate(ids, **kw)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    assert out.shape[1] == PROMPT + NEW
    del m, out
    torch.cuda.empty_cache()
    return dt


def main():
    for batch in [int(a) for a in sys.argv[1:]] or [64]:
        try:
            # Each size twice, alternating, the faster kept: in the first run here the 2-layer
            # model took twice as long as the 4-layer one (5.6 s against 2.8 s), which made
            # the extrapolation meaningless.
            t2, t4 = run(2, batch), run(4, batch)
            t2, t4 = min(t2, run(2, batch)), min(t4, run(4, batch))
        except torch.cuda.OutOfMemoryError as e:
            print(f"transformers rollout batch {batch}: out of memory ({e})")
            continue
        t48 = t4 + (t4 - t2) / 2 * 44
        print(f"transformers rollout {torch.cuda.get_device_name()}: batch {batch}, prompt "
              f"{PROMPT}, {NEW} new: 2 layers {t2:.1f} s, 4 layers {t4:.1f} s -> 48 layers "
              f"{t48:.1f} s = {batch * NEW / t48:.0f} generated tok/s")


if __name__ == "__main__":
    sys.exit(main())
