"""URL routes of inventory (full paths, included at the site root)."""
from django.urls import path

from inventory import views

urlpatterns = [
    path("api/v1/stock/", views.StockListApi.as_view(), name="stock-list"),
    path("api/v1/stock/lookup", views.StockLookupApi.as_view(), name="stock-lookup"),
    path("api/v1/stock/snapshot", views.StockSnapshotApi.as_view(), name="stock-snapshot"),
    path("api/v1/stock/<str:code>/", views.StockDetailApi.as_view(), name="stock-detail"),
    path("api/v1/stock/<str:code>/movements", views.StockMovementsApi.as_view(), name="stock-movements"),
    path("api/v1/products", views.ProductCreateApi.as_view(), name="product-create"),
    path("api/v1/products/<str:code>", views.ProductUpdateApi.as_view(), name="product-update"),
    path("api/v1/products/<str:code>/unified-codes", views.UnifiedCodeCreateApi.as_view(), name="unified-code-create"),
    path("api/v1/locations", views.LocationListApi.as_view(), name="location-list"),
    path("api/v1/transfers", views.TransferListCreateApi.as_view(), name="transfer-list"),
    path("api/v1/transfers/<int:pk>", views.TransferDetailApi.as_view(), name="transfer-detail"),
    path("api/v1/transfers/<int:pk>/receive", views.TransferReceiveApi.as_view(), name="transfer-receive"),
    path("api/v1/transfers/<int:pk>/cancel", views.TransferCancelApi.as_view(), name="transfer-cancel"),
    path("estoque", views.StockListApi.as_view(), name="estoque"),
]
