"""Development-only sign-in for the web console (mounted only with a committed secret)."""
