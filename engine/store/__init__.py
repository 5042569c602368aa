"""What the engine keeps under its data-root about containers: their
records, names and IDs (see README.md for the layout and why)."""
from engine.store.containers import ContainerStore
from engine.store.record import ZERO_TIME, Container, State, go_time, new_id, parse_go_time
from engine.store.summary import summary

__all__ = ["ContainerStore", "Container", "State", "ZERO_TIME", "go_time", "new_id", "parse_go_time", "summary"]
