"""The soak benchmark's arithmetic: the RSS at each minute and the least-squares slope."""

from bench.soak import rss_by_minute, slope_per_minute


def test_rss_by_minute_takes_the_first_sample_of_each_minute():
    samples = [(0.0, 600.0, 10), (30.0, 610.0, 10), (61.0, 620.0, 11), (119.0, 625.0, 11), (125.0, 630.0, 12)]
    assert rss_by_minute(samples) == [600.0, 620.0, 630.0]


def test_a_steady_rise_has_its_slope_per_minute_and_a_plateau_none():
    rising = [(float(t), 500.0 + t / 6) for t in range(0, 300, 5)]  # 10 MiB per minute
    assert abs(slope_per_minute(rising) - 10.0) < 1e-9
    assert slope_per_minute([(float(t), 700.0) for t in range(0, 300, 5)]) == 0.0
    assert slope_per_minute([(0.0, 1.0)]) == 0.0
