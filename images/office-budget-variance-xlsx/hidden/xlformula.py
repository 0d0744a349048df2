"""Tiny evaluator for simple spreadsheet formulas (used by the hidden checks).

Supports numbers, strings, cell references (A1, $B$2, Sheet!C3,
'My sheet'!D4), ranges inside SUM/AVERAGE/MIN/MAX/COUNT, + - * / ^ &,
comparisons, IF/IFERROR/ROUND/ABS, unary signs and parentheses. Referenced formula cells are evaluated recursively; empty cells
count as 0. openpyxl does not compute formulas, so the checks evaluate them.
"""
import re

from openpyxl.utils import range_boundaries, get_column_letter

_TOK = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?) |
    (?P<ref>(?:(?:'[^']+'|[A-Za-z_][A-Za-z0-9_ .]*?)!)?\$?[A-Za-z]{1,3}\$?\d+(?::\$?[A-Za-z]{1,3}\$?\d+)?) |
    (?P<func>[A-Za-z]+)\s*\( |
    (?P<str>"[^"]*") |
    (?P<op><>|<=|>=|[-+*/^(),=<>&])
)""", re.X)


class FormulaError(Exception):
    pass


class _Err:
    """An error value inside IFERROR."""


def tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOK.match(text, pos)
        if not m or m.end() == pos:
            raise FormulaError("cannot parse %r at %d" % (text, pos))
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Evaluator:
    def __init__(self, wb):
        self.wb = wb
        self.stack = []

    def cell_value(self, sheet, ref):
        key = (sheet, ref)
        if key in self.stack:
            raise FormulaError("circular reference at %s!%s" % key)
        if sheet not in self.wb.sheetnames:
            raise FormulaError("no sheet %r" % sheet)
        v = self.wb[sheet][ref].value
        if isinstance(v, str) and v.startswith("="):
            self.stack.append(key)
            try:
                return self.evaluate(v, sheet)
            finally:
                self.stack.pop()
        if v is None:
            return 0
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, (int, float)):
            return v
        return v  # text

    def range_values(self, sheet, ref):
        ref = ref.replace("$", "")
        if ":" not in ref:
            return [self.cell_value(sheet, ref)]
        c1, r1, c2, r2 = range_boundaries(ref)
        vals = []
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                v = self.cell_value(sheet, "%s%d" % (get_column_letter(c), r))
                vals.append(v)
        return vals

    def evaluate(self, formula, sheet):
        text = formula[1:] if formula.startswith("=") else formula
        self.toks = tokenize(text)
        self.i = 0
        self.sheet = [sheet]
        v = self.expr()
        if self.i != len(self.toks):
            raise FormulaError("trailing tokens in %r" % formula)
        return v

    # recursive descent (state saved around nested evaluate calls)
    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def expr(self):
        v = self.concat()
        while self.peek()[0] == "op" and self.peek()[1] in ("=", "<>", "<", ">", "<=", ">="):
            op = self.toks[self.i][1]
            self.i += 1
            r = self.concat()
            v = {"=": v == r, "<>": v != r, "<": v < r, ">": v > r, "<=": v <= r, ">=": v >= r}[op]
        return v

    def concat(self):
        v = self.additive()
        while self.peek() == ("op", "&"):
            self.i += 1
            v = "%s%s" % (v, self.additive())
        return v

    def additive(self):
        v = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.toks[self.i][1]
            self.i += 1
            r = self.term()
            v = v + r if op == "+" else v - r
        return v

    def term(self):
        v = self.unary()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.toks[self.i][1]
            self.i += 1
            r = self.unary()
            v = v * r if op == "*" else v / r
        return v

    def unary(self):
        if self.peek() in (("op", "-"), ("op", "+")):
            op = self.toks[self.i][1]
            self.i += 1
            v = self.unary()
            return -v if op == "-" else v
        return self.power()

    def power(self):
        v = self.atom()
        if self.peek() == ("op", "^"):
            self.i += 1
            v = v ** self.unary()
        return v

    def split_ref(self, ref):
        if "!" in ref:
            sh, r = ref.rsplit("!", 1)
            return sh.strip("'"), r
        return self.sheet[-1], ref

    def atom(self):
        kind, val = self.peek()
        if kind == "str":
            self.i += 1
            return val[1:-1]
        if kind == "num":
            self.i += 1
            return float(val) if any(ch in val for ch in ".eE") else int(val)
        if kind == "ref":
            self.i += 1
            sh, r = self.split_ref(val)
            if ":" in r:
                raise FormulaError("range outside a function")
            return self._nested(lambda: self.cell_value(sh, r.replace("$", "")))
        if kind == "func":
            self.i += 1
            name = val.upper()
            args = []
            while True:
                k, v = self.peek()
                nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else (None, None)
                if k == "ref" and ":" in v and nxt in (("op", ","), ("op", ")")):
                    self.i += 1
                    sh, r = self.split_ref(v)
                    args.extend(self._nested(lambda: self.range_values(sh, r)))
                elif name == "IFERROR" and not args:
                    start = self.i
                    try:
                        args.append(self.expr())
                    except (ZeroDivisionError, FormulaError, TypeError):
                        args.append(_Err())
                        depth = 0
                        self.i = start
                        while self.i < len(self.toks):
                            t = self.toks[self.i]
                            if t in (("op", ","), ("op", ")")) and depth == 0:
                                break
                            if t == ("op", "(") or t[0] == "func":
                                depth += 1
                            elif t == ("op", ")"):
                                depth -= 1
                            self.i += 1
                else:
                    args.append(self.expr())
                k, v = self.peek()
                self.i += 1
                if (k, v) == ("op", ")"):
                    break
                if (k, v) != ("op", ","):
                    raise FormulaError("bad argument list")
            nums = [a for a in args if isinstance(a, (int, float))]
            if name == "SUM":
                return sum(nums)
            if name == "AVERAGE":
                return sum(nums) / len(nums)
            if name == "MIN":
                return min(nums)
            if name == "MAX":
                return max(nums)
            if name == "COUNT":
                return len(nums)
            if name == "IF":
                return args[1] if args[0] else (args[2] if len(args) > 2 else False)
            if name == "IFERROR":
                return args[1] if isinstance(args[0], _Err) else args[0]
            if name == "ROUND":
                return round(args[0], int(args[1]) if len(args) > 1 else 0)
            if name == "ABS":
                return abs(args[0])
            raise FormulaError("unsupported function %s" % name)
        if (kind, val) == ("op", "("):
            self.i += 1
            v = self.expr()
            if self.peek() != ("op", ")"):
                raise FormulaError("missing )")
            self.i += 1
            return v
        raise FormulaError("unexpected token %r" % (val,))

    def _nested(self, fn):
        saved = (self.toks, self.i, list(self.sheet))
        try:
            return fn()
        finally:
            self.toks, self.i, self.sheet = saved


def formula_value(wb, sheet, ref):
    """(is_formula, value) for the cell; value evaluated if it is a formula."""
    v = wb[sheet][ref].value
    if not (isinstance(v, str) and v.startswith("=")):
        return False, v
    return True, Evaluator(wb).evaluate(v, sheet)
