"""Events: what happened in a network, in commit order, read from its sealed audit log."""
