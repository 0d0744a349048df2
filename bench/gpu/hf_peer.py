"""The transformers peer of bench-gpu: Qwen3MoeForCausalLM with the same shapes (hidden 2048,
32/4 heads of 128, 128 experts, top-8, expert width 768, vocab 151936), random bf16 weights
on the GPU, eager attention, decode at batch 1 after a 2048-token prompt, and the prefill of
that prompt. Only L2 and L4 layers are built (48 would need the weights of the whole model);
the 48-layer time is extrapolated linearly: t48 = t4 + (t4 - t2) / 2 * 44, which keeps the
embedding and lm_head once.
"""
import sys
import time

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

CTX = 2048


def run(layers):
    cfg = Qwen3MoeConfig(vocab_size=151936, hidden_size=2048, num_hidden_layers=layers,
                         num_attention_heads=32, num_key_value_heads=4, head_dim=128,
                         moe_intermediate_size=768, intermediate_size=6144, num_experts=128,
                         num_experts_per_tok=8, norm_topk_prob=True, max_position_embeddings=4096,
                         attn_implementation="eager")
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = Qwen3MoeForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.randint(0, 151936, (1, CTX), device="cuda")
    with torch.no_grad():
        out = m(ids, use_cache=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = m(ids, use_cache=True)
        torch.cuda.synchronize()
        prefill = time.perf_counter() - t0
        past = out.past_key_values
        tok = torch.randint(0, 151936, (1, 1), device="cuda")
        times = []
        for i in range(8):
            # decode at the same position each time: the cache is cropped back to CTX
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            o = m(tok, past_key_values=past, use_cache=True,
                  cache_position=torch.tensor([CTX], device="cuda"))
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            past = o.past_key_values
            past.crop(CTX)
        dec = sorted(times[2:])[len(times[2:]) // 2]
    del m, past, out
    torch.cuda.empty_cache()
    return dec, prefill


def main():
    d2, p2 = run(2)
    d4, p4 = run(4)
    d48 = d4 + (d4 - d2) / 2 * 44
    p48 = p4 + (p4 - p2) / 2 * 44
    print(f"transformers {torch.cuda.get_device_name()}: decode batch 1 ctx {CTX}: "
          f"2 layers {d2*1e3:.2f} ms, 4 layers {d4*1e3:.2f} ms -> 48 layers {d48*1e3:.1f} ms "
          f"= {1/d48:.2f} tok/s")
    print(f"transformers prefill {CTX}: 2 layers {p2*1e3:.1f} ms, 4 layers {p4*1e3:.1f} ms -> "
          f"48 layers {p48*1e3:.0f} ms = {CTX/p48:.0f} tok/s")


if __name__ == "__main__":
    sys.exit(main())
