"""`python -m sandbox`: run the local X on its own, for tweetbot or any other X client.

Everything comes from the arguments, or from the environment when an argument is not
given (never from tweetbot's `.env` or settings):

| option | environment | default |
|---|---|---|
| `--host` | `SANDBOX_HOST` | 127.0.0.1 |
| `--port` | `SANDBOX_PORT` | 8100 (0: any free port, shown in the banner) |
| `--client-id` | `SANDBOX_CLIENT_ID` | sandbox-client |
| `--client-secret` | `SANDBOX_CLIENT_SECRET` | sandbox-secret (`--client-secret ''`: a public client) |
| `--redirect-uri` (repeatable) | `SANDBOX_REDIRECT_URIS` (space-separated) | http://127.0.0.1:5000/oauth/callback |
| `--tier` | `SANDBOX_TIER` | payg |
| `--token-lifetime` | `SANDBOX_TOKEN_LIFETIME` | 7200 (X's two hours) |
| `--media-processing-seconds` | `SANDBOX_MEDIA_PROCESSING_SECONDS` | 0 (one step per STATUS poll) |
| `--state` | `SANDBOX_STATE` | none: the world lives in memory only |

More clients can be registered while it runs: `POST /_sandbox/clients`.
`tweetbot sandbox` runs this module with the bot's own client, callback and tier, every
option on the command line except a secret, which it passes in `SANDBOX_CLIENT_SECRET`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from sandbox.limits import TIERS
from sandbox.options import ClientSpec, SandboxConfig
from sandbox.server import serve

DEFAULT_CLIENT = SandboxConfig().clients[0]


def sandbox_config(client_id: str = DEFAULT_CLIENT.client_id,
                   client_secret: str | None = DEFAULT_CLIENT.client_secret,
                   redirect_uris: Sequence[str] = DEFAULT_CLIENT.redirect_uris, tier: str = "payg",
                   token_lifetime: int | None = None, media_processing_seconds: float = 0.0) -> SandboxConfig:
    """The world's starting point: one registered client (no or an empty secret: public), the tier, lifetimes."""
    client = ClientSpec(client_id, client_secret or None, tuple(redirect_uris) or DEFAULT_CLIENT.redirect_uris)
    config = SandboxConfig(clients=(client,), tier=tier, media_processing_seconds=media_processing_seconds)
    return config if token_lifetime is None else replace(config, access_token_lifetime=token_lifetime)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", envvar="SANDBOX_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="SANDBOX_PORT", type=click.IntRange(0, 65535), default=8100, show_default=True,
              help="0: any free port (the banner says which).")
@click.option("--client-id", envvar="SANDBOX_CLIENT_ID", default=DEFAULT_CLIENT.client_id, show_default=True,
              help="The OAuth client registered at start.")
@click.option("--client-secret", envvar="SANDBOX_CLIENT_SECRET", default=DEFAULT_CLIENT.client_secret,
              show_default=True, help="Its secret; '' for a public client (PKCE only).")
@click.option("--redirect-uri", "redirect_uris", envvar="SANDBOX_REDIRECT_URIS", multiple=True,
              default=DEFAULT_CLIENT.redirect_uris, show_default=True,
              help="A callback registered for the client (repeat for more).")
@click.option("--tier", envvar="SANDBOX_TIER", type=click.Choice(TIERS), default="payg", show_default=True,
              help="The X API plan whose rate limits apply.")
@click.option("--token-lifetime", envvar="SANDBOX_TOKEN_LIFETIME", type=click.IntRange(1, 7200), default=None,
              help="Access-token lifetime in seconds (default: X's 7200).")
@click.option("--media-processing-seconds", envvar="SANDBOX_MEDIA_PROCESSING_SECONDS",
              type=click.FloatRange(0, 86400), default=0.0, show_default=True,
              help="How long a GIF or video takes to process (0: one step per STATUS poll).")
@click.option("--state", "state_path", envvar="SANDBOX_STATE", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A file that keeps the world (users, token chains, posts, media) across restarts.")
def main(host: str, port: int, client_id: str, client_secret: str, redirect_uris: tuple[str, ...], tier: str,
         token_lifetime: int | None, media_processing_seconds: float, state_path: Path | None) -> None:
    """Run the local stand-in for X (consent page, tokens, posts, timelines, media)."""
    config = sandbox_config(client_id, client_secret, redirect_uris, tier, token_lifetime, media_processing_seconds)
    serve(config, host=host, port=port, state_path=state_path)


if __name__ == "__main__":
    main(prog_name="python -m sandbox")
