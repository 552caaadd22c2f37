from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from brokers.models import (
    AccountType,
    Broker,
    BrokerInstrument,
    ConversionRate,
    FundingMethod,
    Instrument,
    Licence,
    Platform,
    Regulator,
    SwapRate,
)
from common import cachetags
from pagecache.services import pages_revalidate

# Admin forms say "https://" is assumed for a URL typed without a scheme (Django 6's default).
URL_FIELDS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


class LicenceForm(forms.ModelForm[Licence]):
    class Meta:
        model = Licence
        fields = ["broker", "regulator", "licence_number", "status", "last_verified"]
        error_messages = {"licence_number": {"required": "A licence needs the regulator's licence number."}}


class LicenceInline(admin.TabularInline[Licence, Broker]):
    model = Licence
    form = LicenceForm
    extra = 0
    autocomplete_fields = ["regulator"]


class AccountTypeInline(admin.TabularInline[AccountType, Broker]):
    model = AccountType
    extra = 0


class SwapRateInline(admin.TabularInline[SwapRate, Broker]):
    model = SwapRate
    extra = 0
    autocomplete_fields = ["instrument"]
    verbose_name = "overnight swap"


class BrokerInstrumentInline(admin.TabularInline[BrokerInstrument, Broker]):
    model = BrokerInstrument
    extra = 0
    autocomplete_fields = ["instrument"]
    verbose_name = "quoted instrument"


@admin.register(Broker)
class BrokerAdmin(admin.ModelAdmin[Broker]):
    list_display = [
        "name",
        "status",
        "company_type",
        "headquarters_country",
        "min_deposit",
        "max_leverage",
        "licence_count",
    ]
    list_filter = ["status", "company_type", "licences__regulator__tier", "licences__regulator", "platforms"]
    search_fields = ["name", "slug", "headquarters_country", "licences__licence_number"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["platforms", "funding_methods"]
    inlines = [LicenceInline, AccountTypeInline, BrokerInstrumentInline, SwapRateInline]
    formfield_overrides = URL_FIELDS
    readonly_fields = ["created_at", "updated_at"]
    actions = ["revalidate_pages"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "status", "website", "description"]}),
        ("Company", {"fields": ["company_type", "year_founded", "headquarters_country"]}),
        ("Trading conditions", {"fields": ["min_deposit", "max_leverage", "platforms", "funding_methods"]}),
        ("Client protection", {"fields": ["negative_balance_protection", "segregated_funds"]}),
        (
            "Non-trading fees",
            {"fields": ["deposit_fee", "withdrawal_fee", "inactivity_fee", "inactivity_after_months"]},
        ),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Broker]:
        qs: QuerySet[Broker] = super().get_queryset(request).annotate(licence_total=Count("licences", distinct=True))
        return qs

    @admin.display(description="licences", ordering="licence_total")
    def licence_count(self, obj: Broker) -> int:
        return obj.licence_total  # type: ignore[attr-defined, no-any-return]

    @admin.action(description="Regenerate the public pages of the selected brokers now")
    def revalidate_pages(self, request: HttpRequest, queryset: QuerySet[Broker]) -> None:
        tags = {tag for pk in queryset.values_list("pk", flat=True) for tag in cachetags.broker_changed(pk)}
        keys = pages_revalidate(tags=tags)
        self.message_user(request, f"Regenerating {len(keys)} cached pages.", messages.SUCCESS)


@admin.register(Regulator)
class RegulatorAdmin(admin.ModelAdmin[Regulator]):
    list_display = ["name", "full_name", "country", "tier", "licence_count"]
    list_filter = ["tier", "country"]
    search_fields = ["name", "full_name", "country"]
    prepopulated_fields = {"slug": ["name"]}
    formfield_overrides = URL_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Regulator]:
        qs: QuerySet[Regulator] = super().get_queryset(request).annotate(licence_total=Count("licences"))
        return qs

    @admin.display(description="licences", ordering="licence_total")
    def licence_count(self, obj: Regulator) -> int:
        return obj.licence_total  # type: ignore[attr-defined, no-any-return]


@admin.register(Licence)
class LicenceAdmin(admin.ModelAdmin[Licence]):
    form = LicenceForm
    list_display = ["broker", "regulator", "licence_number", "status", "last_verified"]
    list_filter = ["status", "regulator__tier", "regulator"]
    search_fields = ["broker__name", "regulator__name", "licence_number"]
    autocomplete_fields = ["broker", "regulator"]
    list_select_related = ["broker", "regulator"]
    date_hierarchy = "last_verified"


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin[Instrument]):
    list_display = [
        "symbol",
        "name",
        "asset_class",
        "pip_size",
        "reference_spread_pips",
        "display_precision",
        "sort_order",
    ]
    list_filter = ["asset_class"]
    list_editable = ["sort_order"]
    search_fields = ["symbol", "name"]


@admin.register(AccountType)
class AccountTypeAdmin(admin.ModelAdmin[AccountType]):
    list_display = [
        "broker",
        "name",
        "spread_type",
        "spread_markup_pips",
        "commission_per_lot",
        "min_deposit",
        "lot_step",
        "min_lots",
    ]
    list_filter = ["spread_type"]
    search_fields = ["broker__name", "name"]
    autocomplete_fields = ["broker"]
    list_select_related = ["broker"]


@admin.register(Platform, FundingMethod)
class NamedThingAdmin(admin.ModelAdmin[Platform | FundingMethod]):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(SwapRate)
class SwapRateAdmin(admin.ModelAdmin[SwapRate]):
    list_display = ["broker", "instrument", "long_usd", "short_usd"]
    list_filter = ["instrument"]
    search_fields = ["broker__name", "instrument__symbol"]
    autocomplete_fields = ["broker", "instrument"]
    list_select_related = ["broker", "instrument"]


@admin.register(ConversionRate)
class ConversionRateAdmin(admin.ModelAdmin[ConversionRate]):
    list_display = ["currency", "usd_per_unit", "as_of"]
    search_fields = ["currency"]
