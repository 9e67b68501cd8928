"""A hook that ``M2FRunner`` puts in place of an already built mmengine hook of its base class."""


class ReplacesHook:
    """Mixin: ``from_hook`` gives this hook with the settings (and priority) of a built base-class hook."""

    @classmethod
    def from_hook(cls, hook):
        replacement = cls.__new__(cls)
        replacement.__dict__.update(hook.__dict__)
        return replacement
