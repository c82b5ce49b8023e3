"""tweetbot's worker side: settings, store, X client, tokens, posting, schedules, CLI."""
