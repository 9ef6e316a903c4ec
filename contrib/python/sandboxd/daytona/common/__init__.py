"""Models of the Daytona-compatible facade, at the module paths daytona_sdk
has them (``sandboxd.daytona.common.pty.PtySize`` and so on)."""
