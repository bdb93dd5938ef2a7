"""Optional integrations (extras). Each module imports the facade or engine only, never the reverse,
and raises an ImportError naming the extra to install when its dependency is missing."""
