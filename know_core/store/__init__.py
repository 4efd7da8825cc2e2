"""The run store: run folders, their index, snapshot files and the bounded readers of both."""
