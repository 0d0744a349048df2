# The repository's tests/test_pricing.py, run as the checker against the artifact.
import crucible_artifact

billing = crucible_artifact.module("billing")


def test_plain_total():
    assert billing.calc_tot([(2.50, 4), (1.00, 3)]) == 13.00


def test_tax_and_discount():
    assert billing.calc_tot([(100.0, 1)], tax_rate=0.2, discount=0.1) == 108.00
