"""URL routes of the ERP stock import (full paths, included at the site root)."""
from django.urls import path

from inventory import import_views

urlpatterns = [
    path("api/v1/stock/import", import_views.StockImportApi.as_view(), name="stock-import"),
    path("api/v1/stock/imports/<str:job_id>", import_views.StockImportDetailApi.as_view(), name="stock-import-detail"),
]
