"""Posting: every queued post goes out once, on time, or fails with a reason a person can act on.

`dispatcher` claims due posts and sends them (the worker's posting runners and turns);
`settling` finds out at X what became of a post whose request ended without a clear
answer; `outcomes` writes a post's final outcome; `media_uploads` sends a post's media to
X before its turn. The store's claims (`bot.store.contract`) make every send happen once.
"""
