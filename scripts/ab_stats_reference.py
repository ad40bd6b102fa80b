"""Reference values for the unit tests of src/ab/stats.rs, from scipy and statsmodels.

    python3 -m venv /tmp/ab-stats && /tmp/ab-stats/bin/pip install scipy statsmodels
    /tmp/ab-stats/bin/python scripts/ab_stats_reference.py

(scipy 1.17.1, statsmodels 0.15.0 when the tests' tables were written.)
"""
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
for b, c in [(6, 16), (1, 9), (10, 10), (3, 0), (25, 40), (120, 95), (0, 12), (400, 330)]:
    p = binomtest(min(b, c), b + c, 0.5).pvalue
    q = mcnemar([[0, b], [c, 0]], exact=True).pvalue
    assert abs(p - q) <= 1e-12 * max(p, 1e-300), (b, c, p, q)
    print(f"        ({b}, {c}, {float(p)!r}),")
for x, n in [(65, 161), (75, 161), (0, 12), (12, 12), (140, 200)]:
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    print(f"        ({x}, {n}, {float(lo)!r}, {float(hi)!r}),")
