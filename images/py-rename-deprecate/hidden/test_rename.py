import warnings

import pytest

import crucible_artifact

billing = crucible_artifact.module("billing")
invoice = crucible_artifact.module("billing.invoice")
pricing = crucible_artifact.module("billing.pricing")
report = crucible_artifact.module("billing.report")


def read(path):
    try:
        with open("/workspace/" + path, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError) as e:
        return e


# The callers' sources, read as text when this file is collected: before any code of the
# artifact ran in this check (it owns the workspace and could rewrite them later).
SOURCES = {path: read(path) for path in ("billing/invoice.py", "billing/report.py")}


def test_invoice_output():
    text = invoice.render_invoice("ACME", [("Widget", 2.0, 3), ("Gadget", 10.0, 1)], tax_rate=0.5)
    assert text.splitlines()[-1] == "Total: 24.00"


def test_monthly_revenue():
    got = report.monthly_revenue([
        ("2024-01", [(10.0, 2)], 0.0),
        ("2024-01", [(5.0, 1)], 0.2),
        ("2024-02", [(1.25, 4)], 0.0),
    ])
    assert got == {"2024-01": 26.0, "2024-02": 5.0}


def test_calculate_total():
    assert hasattr(pricing, "calculate_total")
    assert pricing.calculate_total([(2.50, 4), (1.00, 3)]) == 13.00
    assert pricing.calculate_total([(100.0, 1)], tax_rate=0.2, discount=0.1) == 108.00
    assert pricing.calculate_total(items=[(3.0, 1)], discount=0.5) == 1.5


def test_package_exports_new_name():
    assert crucible_artifact.same(billing.calculate_total, pricing.calculate_total)


def test_new_name_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pricing.calculate_total([(1.0, 1)]) == 1.0


def test_alias_warns_and_delegates():
    with pytest.warns(DeprecationWarning):
        assert pricing.calc_tot([(2.50, 4), (1.00, 3)]) == 13.00
    with pytest.warns(DeprecationWarning):
        assert billing.calc_tot([(100.0, 1)], tax_rate=0.2, discount=0.1) == 108.00


def test_callers_use_new_name():
    for path, text in SOURCES.items():
        assert isinstance(text, str), (path, text)
        assert "calc_tot" not in text, path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        invoice.render_invoice("X", [("a", 1.0, 1)])
        report.monthly_revenue([("m", [(1.0, 1)], 0.0)])
