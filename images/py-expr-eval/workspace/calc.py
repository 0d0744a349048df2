"""A tiny calculator for arithmetic expressions typed by users."""

import re


class CalcError(Exception):
    """Raised for any malformed expression or arithmetic error."""


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(\S))")


def tokenize(expr):
    """Split expr into ("num", value) and ("op", char) tokens."""
    tokens = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        number, op = m.groups()
        if number is not None:
            tokens.append(("num", float(number) if "." in number else int(number)))
        elif op in "+-*/^()":
            tokens.append(("op", op))
        else:
            raise CalcError("unexpected character %r at position %d" % (op, m.start(2)))
        pos = m.end()
    return tokens


def evaluate(expr):
    """Evaluate expr and return its numeric value.

    Supports + - * / on integers and decimals, evaluated strictly left to right.
    """
    tokens = tokenize(expr)
    if not tokens:
        raise CalcError("empty expression")
    if tokens[0][0] != "num":
        raise CalcError("expression must start with a number")
    result = tokens[0][1]
    i = 1
    while i < len(tokens):
        kind, op = tokens[i]
        if kind != "op" or i + 1 >= len(tokens) or tokens[i + 1][0] != "num":
            raise CalcError("syntax error near token %d" % i)
        rhs = tokens[i + 1][1]
        if op == "+":
            result += rhs
        elif op == "-":
            result -= rhs
        elif op == "*":
            result *= rhs
        elif op == "/":
            result /= rhs
        else:
            raise CalcError("operator %r is not supported" % op)
        i += 2
    return result
