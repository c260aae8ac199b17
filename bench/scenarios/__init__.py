"""One module per benchmark scenario; see bench/harness.py for the contract."""
