"""What a group of serve processes shares through Redis: the link (with its breaker), the
Order Desk token buckets and the rate-limit counters; each with a local fallback."""
