"""The queue toolkit: what every queue in Postroom is built from.

The outbox, the webhook dispatcher and the job runner (CSV imports now; campaign expansion and
report runs next) each claim rows with a lease, run their ORM calls on one database thread,
wake on a poke, back off on failure and page through long lists by key. Each of those is here
once, and this package imports nothing of Postroom but `core`.
"""
