// Writes the tokenizer test corpus (corpus.jsonl: one JSON string a line) to stdout. Deterministic:
// a seeded generator, so the file can be regenerated and diffed. Run: node corpus.js > corpus.jsonl
"use strict";

let seed = 0x5eed1234;
function rnd() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const rep = (s, n) => s.repeat(n);

const code = [
  'int main(int argc, char **argv)\n{\n    printf("%d\\n", argc);\n    return 0;\n}\n',
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "for (let i = 0; i < arr.length; i++) {\n\tconsole.log(`item ${i}: ${arr[i]}`);\n}\n",
  'fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}\n',
  'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello, 世界")\n}\n',
  '#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l "$f" | awk \'{print $1}\'\ndone\n',
  "SELECT id, name, COUNT(*) AS n\nFROM users u JOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2024-01-01'\nGROUP BY id, name HAVING n > 3;\n",
  '<!DOCTYPE html>\n<html lang="en">\n  <body class="main">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>\n',
  "class Stack<T> {\n  private items: T[] = [];\n  push(x: T): void { this.items.push(x); }\n  pop(): T | undefined { return this.items.pop(); }\n}\n",
  '{"name": "crucible", "version": "0.1.0", "deps": {"jansson": ">=2.13"}, "n": [1, 2.5, -3e10]}',
  "diff --git a/x.c b/x.c\n@@ -1,3 +1,4 @@\n-int x = 1;\n+int x = 2;\n+int y = x << 3;\n",
  "    def __init__(self, *args, **kwargs) -> None:\r\n        super().__init__(*args, **kwargs)\r\n",
  "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\nstatic const char *names[] = { \"a\", \"b\", NULL };\n",
  "public static void Main(string[] args) { var q = from x in xs where x % 2 == 0 select x * 10; }",
  "(defun square (x) (* x x))\n(mapcar #'square '(1 2 3))\n",
  "x := map[string]int{\"a\": 1}; if v, ok := x[\"a\"]; ok && v != 0 { return nil }",
];
const english = [
  "The quick brown fox jumps over the lazy dog.",
  "I'm sure they'll say it's fine, but we've seen what'd happen if you don't check.",
  "SHE'S RIGHT: THEY'RE NOT READY, AND WE'LL HAVE TO WAIT.",
  "It Was The Best Of Times, It Was The Worst Of Times.",
  "Mr. O'Neil paid $1,234.56 on 2024-03-15 at 10:45pm (approx. 3.5% more).",
  "e-mail me at someone@example.com or visit https://example.org/path?q=1&r=two#frag",
  "Well... that's odd!!! Isn't it?? — yes; no: maybe.",
];
const scripts = [
  "Съешь же ещё этих мягких французских булок, да выпей чаю.",
  "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
  "الخط العربي جميل جدا، وهو يكتب من اليمين إلى اليسار.",
  "עברית היא שפה שמית; כתובה מימין לשמאל.",
  "हिन्दी एक इंडो-आर्यन भाषा है जो देवनागरी लिपि में लिखी जाती है।",
  "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
  "한국어는 한글로 씁니다. 안녕하세요!",
  "日本語の文章には、ひらがな・カタカナ・漢字が混ざっています。",
  "中文没有空格，分词很难。我们今天去北京吧！",
  "Tiếng Việt có nhiều dấu thanh: à á ả ã ạ.",
  "Ελληνικά και ελληνικά· ερωτηματικό;",
  "ქართული ენა, Հայերեն լեզու, ᐃᓄᒃᑎᑐᑦ",
  "Zażółć gęślą jaźń. Fußgängerübergänge. Ærøskøbing.",
];
const emoji = [
  "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "👍🏿", "🇯🇵🇫🇷", "❤️‍🔥", "🧑🏻‍🤝‍🧑🏾", "😀", "🎉", "✈️", "1️⃣", "🫠",
  "👁️‍🗨️", "🐈‍⬛",
];
// Sequences that NFC changes: decomposed accents, reordered marks, singletons, Hangul jamo.
const nfc = [
  "e\u0301", "A\u030A", "o\u0308", "n\u0303", "a\u0323\u0302", "a\u0302\u0323", "\u212B", "\u2126",
  "\u1100\u1161\u11A8", "\u1112\u1161\u11AB", "C\u0327", "u\u0308\u0301", "\u0041\u0301\u0301",
  "\u00e9", "\u1e9b\u0323", "\u0344", "\u0958", "\u2000", "\u00c5",
];
const specials = [
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>", "<think>",
  "</think>", "<tool_response>", "</tool_response>", "<|fim_prefix|>", "<|vision_pad|>",
  "<|im_st", "<|im_end", "< |im_end|>", "<<|im_end|>>",
];
const ws = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", "\u00a0", "\u3000", "\r", "\u2003", "\u200b"];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x", "’s"];
const words = ["hello", "World", "don", "it", "they", "WE", "x", "_id", "foo_bar", "camelCase", "été", "naïve", "Straße", "ǅemal"];

function word() {
  return pick(words) + (rnd() < 0.3 ? pick(contractions) : "");
}
function digits() {
  let s = "";
  const n = 1 + int(12);
  for (let i = 0; i < n; i++) s += String(int(10));
  return pick(["", "-", "+", "$", "#"]) + s + pick(["", ".5", ",000", "e10", "%", "px"]);
}
function randomChars(n) {
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff],
    [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2190, 0x22ff], [0x3040, 0x30ff],
    [0x4e00, 0x4fff], [0xac00, 0xad00], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff], [0x10000, 0x1007f]];
  let s = "";
  for (let i = 0; i < n; i++) {
    const r = pick(ranges);
    let cp = r[0] + int(r[1] - r[0] + 1);
    if (cp === 0x85 || cp === 0xfeff || (cp >= 0xd800 && cp < 0xe000)) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}
function mix(n) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    const k = int(10);
    if (k === 0) parts.push(word());
    else if (k === 1) parts.push(pick(ws));
    else if (k === 2) parts.push(digits());
    else if (k === 3) parts.push(pick(emoji));
    else if (k === 4) parts.push(pick(nfc));
    else if (k === 5) parts.push(pick(specials));
    else if (k === 6) parts.push(pick(scripts).slice(0, 1 + int(20)));
    else if (k === 7) parts.push(pick(english).slice(int(10)));
    else if (k === 8) parts.push(randomChars(1 + int(6)));
    else parts.push(pick(code).slice(int(30), 30 + int(60)));
  }
  return parts.join(rnd() < 0.5 ? "" : pick(ws));
}

const out = [];
// Whole pieces first, each in a few variants.
for (const s of code) out.push(s, s.toUpperCase(), s.replace(/\n/g, "\r\n"), s.replace(/    /g, "\t"));
for (const s of english) out.push(s, s.toLowerCase(), s.toUpperCase(), " " + s, s + "\n\n");
for (const s of scripts) out.push(s, s.normalize("NFD"), s + " " + s);
for (const e of emoji) out.push(e, "hi " + e + "!", rep(e, 3), e + "\u200d" + e);
for (const s of nfc) out.push(s, "caf" + s, s + " " + s + "x", s.normalize("NFD"));
for (const s of specials) out.push(s, "a" + s + "b", " " + s + " ", s + s, "x\n" + s + "\n", "don't" + s + "I'LL");
for (const w of ws) out.push(w, rep(w, 5), "a" + w + "b", w + "x" + w, rep(w, 3) + "end");
for (const c of contractions) out.push("it" + c, "IT" + c + " go", c, "x " + c + c);
// Long runs of one character: one pre-tokenizer piece of hundreds of bytes.
for (const ch of ["a", "Z", "=", " ", "\n", "-", "9", "é", "中", "😀", "ab", "\t", ".", "_", "ﬁ"])
  for (const n of [17, 64, 300, 1000]) out.push(rep(ch, n));
// Random mixtures, short and long.
while (out.length < 2400) out.push(mix(1 + int(rnd() < 0.2 ? 60 : 12)));
for (const s of out) process.stdout.write(JSON.stringify(s) + "\n");
