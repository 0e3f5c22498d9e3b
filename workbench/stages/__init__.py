"""The stage kernel: the content-addressed cache, the registry of stage names and the one runner of
"a cached stage with its own tracked run". It sits below every stage and imports none of them."""
