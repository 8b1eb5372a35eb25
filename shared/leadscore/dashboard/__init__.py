"""The marketers' dashboard (issue 17): access, bounded queries, server-rendered HTML."""
