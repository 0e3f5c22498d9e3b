"""One module per real source. Each exposes NAME, VERSION, EVAL_FRACTION, EVAL_ONLY, PACKAGES and
``samples(ws, limit=None)`` yielding ``workbench.data.shards.Sample`` in a deterministic order; optionally
NEAR_DUPLICATES = False to group by exact pixels only (see ``workbench.data.shards``)."""
