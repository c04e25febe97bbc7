"""Put on PYTHONPATH by the bench for a peer's processes only: count requests from interpreter start."""

from bench.peers.counting import install_from_env

install_from_env()
