"""The generic agent engine: workflow registry, tools, the loop, backends and tracing.

Nothing in this package knows about support tickets; a workflow (``agent.workflows``) plugs its
tools, prompt and context into it.
"""
