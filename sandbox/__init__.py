"""A local stand-in for X: OAuth 2.0 server and the API endpoints the bot uses."""
