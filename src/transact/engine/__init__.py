"""The engine: workflow and step execution, recovery, queues, scheduler, communication.

Speaks to the system database only through ``transact.storage.Store``.
"""
