from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with the two-factor admin site (accounts.admin_site) as its default site."""

    default_site = "accounts.admin_site.StaffAdminSite"
