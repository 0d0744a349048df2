# The repository's tests/test_invoice.py, run as the checker against the artifact.
import crucible_artifact

invoice = crucible_artifact.module("billing.invoice")


def test_render_invoice():
    text = invoice.render_invoice("ACME", [("Widget", 2.0, 3), ("Gadget", 10.0, 1)], tax_rate=0.5)
    assert text.splitlines()[0] == "Invoice for ACME"
    assert text.splitlines()[-1] == "Total: 24.00"
