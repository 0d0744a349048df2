// Writes the chat-template test conversations (chat_cases.json: an array of {name, messages,
// tools?, add_generation_prompt, enable_thinking?}) to stdout. Deterministic.
// Run: node chat_cases.js > chat_cases.json
"use strict";

let seed = 0xc4a7;
function rnd() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];

const tools = [
  { type: "function", function: { name: "run_shell", description: "Run a shell command in the workspace.",
    parameters: { type: "object", properties: { command: { type: "string", description: "the command" },
      timeout: { type: "integer", description: "seconds" } }, required: ["command"], additionalProperties: false } } },
  { type: "function", function: { name: "read_file", description: "Read a file (UTF-8, « quoted » names OK).",
    parameters: { type: "object", properties: { path: { type: "string" }, max_bytes: { type: "integer" } },
      required: ["path"] } } },
  { type: "function", function: { name: "get_weather", description: "Weather for a city: 天气.",
    parameters: { type: "object", properties: { location: { type: "string" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] }, detailed: { type: "boolean" } },
      required: ["location"] } } },
];
const sys = (c) => ({ role: "system", content: c });
const user = (c) => ({ role: "user", content: c });
const asst = (c, extra) => Object.assign({ role: "assistant", content: c }, extra || {});
const tool = (c) => ({ role: "tool", content: c });
const call = (name, args) => ({ type: "function", function: { name, arguments: args } });

const cases = [];
const add = (name, messages, opts) => cases.push(Object.assign({ name, messages, add_generation_prompt: false }, opts || {}));

add("user_only", [user("Hello!")], { add_generation_prompt: true });
add("system_user", [sys("You are a helpful assistant."), user("What is 2+2?")], { add_generation_prompt: true });
add("system_user_assistant", [sys("Be brief."), user("Hi"), asst("Hello.")]);
add("multi_turn", [user("Name a color."), asst("Blue."), user("Another?")], { add_generation_prompt: true });
add("reasoning_last", [user("Why is the sky blue?"), asst("Rayleigh scattering.", { reasoning_content: "Short wavelengths scatter more." })]);
add("inline_think", [user("Hi"), asst("<think>\nThe user greets me.\n</think>\n\nHello there!")]);
add("inline_think_no_newlines", [user("Hi"), asst("<think>plan</think>Answer")]);
add("reasoning_dropped_by_next_user", [user("Q1"), asst("A1", { reasoning_content: "think 1" }), user("Q2")], { add_generation_prompt: true });
add("tools_no_system", [user("Weather in Paris?")], { tools, add_generation_prompt: true });
add("tools_with_system", [sys("You are an agent."), user("List files.")], { tools, add_generation_prompt: true });
add("one_tool_round", [sys("You are an agent."), user("List files."),
  asst("", { tool_calls: [call("run_shell", { command: "ls -la" })] }), tool("a.txt\nb.txt\n")], { tools, add_generation_prompt: true });
add("multi_step_tools", [user("Fix the build."),
  asst("", { reasoning_content: "Look at the error first.", tool_calls: [call("run_shell", { command: "make 2>&1 | tail -5" })] }),
  tool("error: x undeclared"),
  asst("", { reasoning_content: "Open the file.", tool_calls: [call("read_file", { path: "src/x.c" })] }),
  tool("int main() { return x; }"),
  asst("The variable x is never declared; declare it.", { reasoning_content: "Done." })], { tools });
add("parallel_calls", [user("Weather in Paris and Tokyo?"),
  asst("", { tool_calls: [call("get_weather", { location: "Paris" }), call("get_weather", { location: "Tokyo", unit: "celsius" })] }),
  tool("{\"temp\": 18}"), tool("{\"temp\": 22}")], { tools, add_generation_prompt: true });
add("content_before_call", [user("Read it"), asst("Let me read the file.", { tool_calls: [call("read_file", { path: "README.md" })] }), tool("# Title")], { tools, add_generation_prompt: true });
add("string_arguments", [user("go"), asst("", { tool_calls: [call("run_shell", "{\"command\": \"echo hi\"}")] }), tool("hi")], { tools, add_generation_prompt: true });
add("thinking_off", [user("Quick answer: 3*3?")], { add_generation_prompt: true, enable_thinking: false });
add("thinking_on", [user("Quick answer: 3*3?")], { add_generation_prompt: true, enable_thinking: true });
add("user_wrapped_tool_response", [user("Task"), asst("", { tool_calls: [call("run_shell", { command: "id" })] }),
  user("<tool_response>\nuid=0\n</tool_response>"), asst("You are root.", { reasoning_content: "uid 0" })], { tools });
add("system_not_first", [user("Hi"), asst("Hello"), sys("New rules apply."), user("OK?")], { add_generation_prompt: true });
add("unicode", [sys("Réponds en français. 🇫🇷"), user("日本語で答えて: 👨‍👩‍👧 e\u0301"), asst("はい、わかりました。😀")], { add_generation_prompt: true });
add("special_text_in_content", [user("What does <|im_end|> mean? And <think>?"), asst("It ends a turn: <|im_start|>.")]);
add("only_calls_no_content", [user("x"), asst("", { tool_calls: [call("read_file", { path: "/etc/hosts", max_bytes: 100 })] })], { tools });
add("empty_reasoning_last", [user("x"), asst("y", { reasoning_content: "" })]);
add("empty_reasoning_not_last", [user("x"), asst("", { reasoning_content: "", tool_calls: [call("run_shell", { command: "true" })] }), tool("")], { tools, add_generation_prompt: true });
add("content_newlines_after_think", [user("x"), asst("<think>\n\nr\n\n</think>\n\n\n\ncontent\n")]);
add("nested_arguments", [user("x"), asst("", { tool_calls: [call("run_shell", { command: "printf '%s\\n' \"a\\\\b\"\t\u0001end", timeout: 30, opts: { env: ["A=1", "B=ü"], nested: { deep: [1, [2, [3]], null, true, false] } } })] })], { tools });
add("tool_first_after_system", [sys("s"), tool("orphan result"), user("q")], { add_generation_prompt: true });
add("assistant_prefill_last", [user("Write a haiku."), asst("<think>\nsyllables\n</think>\n\nOld pond")]);
add("two_think_tags", [user("x"), asst("<think>a</think>b</think>c")]);
add("tools_empty_list", [user("x")], { tools: [], add_generation_prompt: true });
add("long_content", [user("lorem ipsum ".repeat(300)), asst("ok")]);
add("crlf_and_tabs", [user("line1\r\nline2\r\n\tindented"), asst("seen\r\n")], { add_generation_prompt: true });

// Random agent episodes: user task, then rounds of calls and results, sometimes a new user turn.
const cmds = ["ls", "cat a.py", "pytest -q", "git diff", "make", "grep -rn TODO .", "python3 -c 'print(1)'"];
const outputs = ["ok", "FAILED test_x.py::test_a - AssertionError", "", "  1 file changed\n", "Traceback (most recent call last):\n  File \"a.py\", line 1", "数据 ✓", "<tool_response>nested</tool_response>"];
for (let e = 0; e < 16; e++) {
  const msgs = [];
  if (rnd() < 0.7) msgs.push(sys("You are a coding agent. Episode " + e + "."));
  msgs.push(user(pick(["Fix the failing test.", "Make the build pass.", "Add a --verbose flag.", "Why does it crash?"])));
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const n = 1 + (rnd() < 0.25 ? 1 : 0);
    const calls = [];
    for (let k = 0; k < n; k++) {
      const which = int(3);
      if (which === 0) calls.push(call("run_shell", rnd() < 0.5 ? { command: pick(cmds) } : { command: pick(cmds), timeout: 10 + int(100) }));
      else if (which === 1) calls.push(call("read_file", { path: pick(["a.py", "src/main.c", "docs/ü.md"]) }));
      else calls.push(call("get_weather", { location: pick(["Paris", "東京", "Zürich"]), detailed: rnd() < 0.5 }));
    }
    const extra = { tool_calls: calls };
    if (rnd() < 0.6) extra.reasoning_content = pick(["I should look first.", "Run the tests.", "Hmm.\nTwo lines.", ""]);
    msgs.push(asst(rnd() < 0.3 ? pick(["Let me check.", "Running it now."]) : "", extra));
    for (let k = 0; k < n; k++) msgs.push(tool(pick(outputs)));
    if (rnd() < 0.2) {
      msgs.push(asst(pick(["Done so far.", "Partial fix applied."]), rnd() < 0.5 ? { reasoning_content: "Summarise." } : {}));
      msgs.push(user(pick(["Continue.", "Also update the docs."])));
    }
  }
  const end = rnd() < 0.5;
  if (end) msgs.push(asst("All done.", rnd() < 0.5 ? { reasoning_content: "Tests pass now." } : {}));
  add("episode_" + e, msgs, { tools, add_generation_prompt: !end, ...(rnd() < 0.2 ? { enable_thinking: false } : {}) });
}
process.stdout.write(JSON.stringify(cases, null, 1) + "\n");
