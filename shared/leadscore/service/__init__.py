"""Use cases: they take a store, the rules and a `now`, and do one job each."""
