from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    verbose_name = "Triage agent"

    def ready(self) -> None:
        from agent import receivers  # noqa: F401 - connects the signal receivers
