"""Local servers and builders that play the outside world in tests."""
