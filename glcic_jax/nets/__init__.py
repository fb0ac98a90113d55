"""The paper's networks (models), their fast exact layers, and a factory that builds them from a config."""
