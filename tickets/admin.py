"""Admin pages for tickets and what Triage admins curate around them."""

from django.contrib import admin

from tickets.forms import CategoryForm
from tickets.models import Category, ChangeRecord, ReplyTemplate, Ticket, TicketNote
from tickets.services import ticket_ingest


class ReplyTemplateInline(admin.TabularInline):
    model = ReplyTemplate
    extra = 0
    fields = ["name", "body", "is_active"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = ["name", "slug", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "description", "routing_rules"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ReplyTemplateInline]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_fields(request, obj))
        if self.has_change_permission(request, obj):
            return fields
        # Read-only, the keywords read as the comma-separated line they are edited as.
        return [("keyword_list" if name == "keywords" else name) for name in fields]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if self.has_change_permission(request, obj) else [*readonly, "keyword_list"]

    @admin.display(description="keywords")
    def keyword_list(self, category: Category) -> str:
        return ", ".join(category.keywords) or "-"


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "is_active", "updated_at"]
    list_filter = ["is_active", "category"]
    search_fields = ["name", "body"]
    list_select_related = ["category"]


class TicketNoteInline(admin.TabularInline):
    model = TicketNote
    extra = 0
    fields = ["body", "source", "author", "created_at", "retracted_at"]
    readonly_fields = ["source", "author", "created_at", "retracted_at"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Notes are append-only: a correction is a new note, so the history stays readable.
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "status", "category", "urgency", "channel", "created_at"]
    list_filter = ["status", "urgency", "category", "channel", "created_at"]
    search_fields = ["subject", "body", "requester_email", "external_id"]
    list_select_related = ["category"]
    fields = [
        "subject",
        "body",
        "requester_email",
        "channel",
        "external_id",
        "status",
        "category",
        "urgency",
        "status_changed_at",
        "created_at",
        "updated_at",
    ]
    date_hierarchy = "created_at"
    inlines = [TicketNoteInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Staff create tickets (phone, walk-in) through ingest; labels change through review.
        fixed = ["status", "category", "urgency", "status_changed_at", "created_at", "updated_at"]
        return fixed if obj is None else ["external_id", *fixed]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if change:
            super().save_model(request, obj, form, change)
            return
        result = ticket_ingest(
            subject=obj.subject,
            body=obj.body,
            requester_email=obj.requester_email,
            external_id=obj.external_id,
            channel=obj.channel,
        )
        obj.pk = result.ticket.pk


@admin.register(TicketNote)
class TicketNoteAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "source", "author", "created_at", "retracted_at"]
    list_filter = ["source", "created_at"]
    search_fields = ["body", "ticket__subject"]
    list_select_related = ["ticket", "author"]
    raw_id_fields = ["ticket"]


@admin.register(ChangeRecord)
class ChangeRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "ticket", "action", "target", "summary", "actor", "reverted_at"]
    list_filter = ["action", "target", "reversible", "created_at"]
    search_fields = ["summary", "ticket__subject"]
    list_select_related = ["ticket", "actor"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # the journal is written by services only

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
