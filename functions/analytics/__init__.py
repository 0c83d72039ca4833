"""Analytics and A/B tests: attribution of interactions to recommendations, counters, reports, tests.

Layout: ``keys`` (the counter key layout), ``domain`` and ``statistics`` and
``assignment`` are pure; ``counters_repository`` and ``ab_tests_repository`` hold the DynamoDB access;
``attribution``, ``reports`` and ``ab_tests`` are the logic the entry points call; ``serving_hooks`` is
the seam the serving function calls; ``telemetry`` emits the business metrics (EMF) and
``metric_names`` names every metric the CDK dashboards and alarms read.
"""
