"""The tallies behind the counters of /metrics (postroom.ops.tallies)."""

from __future__ import annotations

from django.db import models


class Tally(models.Model):
    """Counts of one table's rows by their labels, up to a checkpoint id.

    `counts` holds `[[label, ..., count], ...]` for the rows with `id <= through_id`; the rows
    above it are counted at each scrape. `seen_id` is the highest id visible at `seen_at`: the
    next checkpoint, once it has settled (postroom.ops.tallies.SETTLE).
    """

    name = models.CharField(max_length=50, unique=True)
    through_id = models.BigIntegerField()
    counts = models.JSONField(default=list)
    seen_id = models.BigIntegerField()
    seen_at = models.DateTimeField()
    # The counters count from here (their `_created` in the OpenMetrics format).
    started_at = models.DateTimeField()
    # Raised by every checkpoint move: of two processes moving it at once, one writes.
    version = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"tally {self.name} through {self.through_id}"
