"""Model backends behind one protocol (``base.ModelBackend``); ``selection`` chooses one."""
