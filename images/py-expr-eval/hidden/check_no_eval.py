"""Fail if calc.py calls eval/exec/compile (the task forbids them).

A static check run by the checker (python3 -I): it reads the source as text and parses it;
it never imports or runs the workspace's code."""
import ast
import sys

try:
    with open("/workspace/calc.py", encoding="utf-8") as f:
        tree = ast.parse(f.read(), "calc.py")
except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as e:
    print("calc.py cannot be read or parsed: %s" % e)
    sys.exit(1)
for node in ast.walk(tree):
    if isinstance(node, ast.Call):
        f = node.func
        bad = (isinstance(f, ast.Name) and f.id in ("eval", "exec", "compile", "literal_eval")) or \
              (isinstance(f, ast.Attribute) and f.attr in ("eval", "exec", "literal_eval")
               and isinstance(f.value, ast.Name) and f.value.id in ("builtins", "ast", "__builtins__"))
        if bad:
            name = f.id if isinstance(f, ast.Name) else f.attr
            print("calc.py calls %s() at line %d" % (name, node.lineno))
            sys.exit(1)
print("ok")
