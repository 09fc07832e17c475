"""What notifications say: notices computed from a build (anomaly alerts, SLO status, digests).

This package decides *what* is worth telling and with which numbers; it never sends anything
(delivery, signing, retries and the state table are `northstar/notify/`).
"""
