"""Replay of logged traffic, synthetic environments, off-policy evaluation and regret."""
