"""The infra wing's error: what the CLI shows as one line naming the setting and the fix."""


class MeshEnvironmentError(ValueError):
    """The environment asks for something the platform cannot do."""
