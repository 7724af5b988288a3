from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    verbose_name = "Triage agent"

    def ready(self) -> None:
        import agent.workflows.support_triage  # noqa: F401 - registers the workflow
        from agent import receivers  # noqa: F401 - connects the signal receivers
