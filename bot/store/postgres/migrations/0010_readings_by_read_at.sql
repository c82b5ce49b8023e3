-- /metrics sums the readings of the last 30 days on every scrape (`reading_totals`): found by when
-- they were read, not by a scan of every reading ever kept.
CREATE INDEX readings_by_read_at ON readings (read_at);
