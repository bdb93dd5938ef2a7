"""Leaf helpers shared by every layer (storage, engine, facade, CLI). Imports nothing from transact."""
