"""Notifications: subscriptions declared in the dbt project, evaluated after each published
build (and on a schedule for digests), delivered once each, signed, retried, and recorded.

`metrics/notify/` computes the notices; this package decides who gets which (`config`),
remembers what was sent (`state`), formats, signs and posts them (`deliver`), and runs it all
(`runner`).
"""
