"""`python -m bot.cli`: the `tweetbot` command without its installed script (as `python bot/cli.py` was)."""
from bot.cli import main

if __name__ == "__main__":  # imported alone (tests/test_imports.py), it runs nothing
    main()
