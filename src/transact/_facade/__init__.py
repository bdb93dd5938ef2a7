"""The ``DBOS`` facade, one mixin per feature over one typed base that holds the current instance.

Mixins hold delegation and docstrings only; the work is done by ``transact.engine``. Nothing below
the facade (engine, storage) imports it.
"""
